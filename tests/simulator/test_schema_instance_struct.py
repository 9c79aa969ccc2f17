"""Schemas that travelled through google.protobuf.Struct carry floats (3.0) for size keywords."""

from __future__ import annotations

import jsonschema

from llmmesh.common.structs import dict_to_struct, struct_to_dict
from llmmesh.simulator.schema_instance import schema_instance

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 5},
        "tags": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["name", "tags"],
    "minProperties": 2,
}


def test_instances_of_struct_round_tripped_schemas_are_valid() -> None:
    travelled = struct_to_dict(dict_to_struct(SCHEMA))
    assert travelled["properties"]["name"]["maxLength"] == 5.0
    jsonschema.validate(schema_instance(travelled), SCHEMA)
