"""Ollama API simulator: a product component for demos, chaos drills, benchmarks and tests.

Start one in-process with ``start_simulator(SimulatorConfig(...))`` or from the command line
with ``llmmesh-sim``. See ``faults.py`` (fault specs), ``scripts.py`` (scripted answers) and
``control.py`` (the ``/_sim/`` control API).
"""

from llmmesh.simulator.app import create_app
from llmmesh.simulator.config import FaultSpec, ScriptRule, SimulatorConfig
from llmmesh.simulator.faults import parse_fault_spec
from llmmesh.simulator.runner import RunningSimulator, start_simulator

__all__ = [
    "FaultSpec",
    "RunningSimulator",
    "ScriptRule",
    "SimulatorConfig",
    "create_app",
    "parse_fault_spec",
    "start_simulator",
]
