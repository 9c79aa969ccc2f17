// The patterns the playground can run: REST route, a small form, and how the form becomes the
// exact request body. Bidirectional methods take a JSON array of stream messages over REST.

const CRITERIA = ["factual", "clarity", "relevance", "faithfulness", "helpfulness", "safety"];

// `model` is "" for the server's default model: then no model field is sent at all.
const withModel = (model, obj) => (model ? { model, ...obj } : obj);
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
const num = (text) => (text === "" ? undefined : Number(text));
const options = (f) => {
  const o = {};
  if (f.max_tokens !== "") o.max_tokens = Number(f.max_tokens);
  if (f.temperature !== undefined && f.temperature !== "") o.temperature = Number(f.temperature);
  return o;
};

export const PATTERNS = {
  chat: {
    label: "Inference · chat",
    path: "/api/v1/inference/chat:stream",
    hint: "InferenceService.Chat (bidirectional): one turn, tokens stream in, then `done`.",
    fields: [
      { name: "system", label: "System prompt", value: "You are a concise assistant." },
      { name: "user", label: "Message", kind: "textarea", value: "Why is the sky blue? Answer in two sentences." },
      { name: "max_tokens", label: "Max tokens", kind: "number", value: "128" },
      { name: "temperature", label: "Temperature", kind: "number", value: "0.7", step: "0.1" },
    ],
    build: (f, model) => {
      const messages = [];
      if (f.system) messages.push({ role: "ROLE_SYSTEM", content: f.system });
      messages.push({ role: "ROLE_USER", content: f.user });
      return [{ turn: withModel(model, { messages, options: options(f) }) }];
    },
  },
  generate: {
    label: "Inference · generate",
    path: "/api/v1/inference/generate",
    hint: "InferenceService.Generate (server stream): one prompt, tokens, then `done`.",
    fields: [
      { name: "prompt", label: "Prompt", kind: "textarea", value: "Write a limerick about a load balancer." },
      { name: "max_tokens", label: "Max tokens", kind: "number", value: "96" },
    ],
    build: (f, model) => withModel(model, { prompt: f.prompt, options: options(f) }),
  },
  judge: {
    label: "Judge",
    path: "/api/v1/judge/evaluate:stream",
    hint: "LLM-as-a-judge: reasoning tokens, each pairwise order's verdict, then the `result`.",
    fields: [
      { name: "question", label: "Question", value: "What is the capital of France?" },
      { name: "answer", label: "Answer (A)", kind: "textarea", value: "Paris is the capital of France." },
      { name: "answer_b", label: "Answer B (pairwise only)", value: "" },
      { name: "ground_truth", label: "Reference answer", value: "Paris" },
      { name: "judge_type", label: "Criterion", kind: "select", options: CRITERIA, value: "factual" },
      { name: "mode", label: "Mode", kind: "select", options: ["JUDGE_MODE_POINTWISE", "JUDGE_MODE_PAIRWISE"],
        value: "JUDGE_MODE_POINTWISE" },
    ],
    build: (f, model) => {
      const req = withModel(model, { question: f.question, answer: f.answer, judge_type: f.judge_type,
                                     mode: f.mode });
      if (f.ground_truth) req.ground_truth = f.ground_truth;
      if (f.mode === "JUDGE_MODE_PAIRWISE") req.answer_b = f.answer_b;
      return [{ evaluate: req }];
    },
  },
  jury: {
    label: "Jury",
    path: "/api/v1/jury/evaluate:stream",
    hint: "A panel of judges in parallel: each juror's verdict as it arrives, then the aggregate.",
    fields: [
      { name: "question", label: "Question", value: "What is the boiling point of water at sea level?" },
      { name: "answer", label: "Answer", kind: "textarea", value: "100 °C (212 °F)." },
      { name: "jurors", label: "Juror criteria (comma-separated)", value: "factual, relevance, clarity" },
      { name: "aggregation", label: "Aggregation", kind: "select",
        options: ["AGGREGATION_MAJORITY_VOTE", "AGGREGATION_MEAN", "AGGREGATION_MEDIAN"],
        value: "AGGREGATION_MAJORITY_VOTE" },
    ],
    build: (f, model) => [{
      evaluate: {
        question: f.question,
        answer: f.answer,
        panel: list(f.jurors).map((criterion) => withModel(model, { criterion })),
        aggregation: f.aggregation,
      },
    }],
  },
  tooluse: {
    label: "Tool use",
    path: "/api/v1/tool-use/execute:stream",
    hint: "The model calls tools, the service runs them: calls, results, answer tokens, then the `result`.",
    fields: [
      { name: "prompt", label: "Prompt", kind: "textarea", value: "What is 17 * 23 + 4?" },
      { name: "tools", label: "Tools (comma-separated; empty = all built-in)", value: "calculator" },
      { name: "max_steps", label: "Max steps", kind: "number", value: "4" },
    ],
    build: (f, model) => [{
      execute: withModel(model, { prompt: f.prompt, tools: list(f.tools), max_steps: num(f.max_steps) }),
    }],
  },
  planexecute: {
    label: "Plan & execute",
    path: "/api/v1/plan-execute/run:stream",
    hint: "A planner writes a DAG of steps, the executor runs them: plan, step starts and results, answer.",
    fields: [
      { name: "goal", label: "Goal", kind: "textarea", value: "Compute (12 + 30) * 2, then explain the result in one sentence." },
      { name: "max_steps", label: "Max steps", kind: "number", value: "6" },
    ],
    build: (f, model) => [{ run: withModel(model, { goal: f.goal, max_steps: num(f.max_steps) }) }],
  },
  reflection: {
    label: "Reflection",
    path: "/api/v1/reflection/improve:stream",
    hint: "Generate, critique, revise: each round's draft and critique, then the best draft.",
    fields: [
      { name: "task", label: "Task", kind: "textarea", value: "Write a haiku about autumn rain." },
      { name: "criteria", label: "Critic criteria", value: "vivid imagery, 5-7-5 syllables" },
      { name: "max_rounds", label: "Max rounds", kind: "number", value: "3" },
      { name: "score_threshold", label: "Stop at score (0-10)", kind: "number", value: "8", step: "0.5" },
    ],
    build: (f, model) => [{
      improve: withModel(model, { task: f.task, criteria: f.criteria, max_rounds: num(f.max_rounds),
                                  score_threshold: num(f.score_threshold) }),
    }],
  },
  collaboration: {
    label: "Collaboration",
    path: "/api/v1/collaborate/run:stream",
    hint: "Agents with roles take turns (round-robin, debate, mixture-of-agents); every turn streams.",
    fields: [
      { name: "task", label: "Task", kind: "textarea", value: "Should a small team adopt microservices? Decide in a few sentences." },
      { name: "strategy", label: "Strategy", kind: "select",
        options: ["STRATEGY_ROUND_ROBIN", "STRATEGY_DEBATE", "STRATEGY_MIXTURE_OF_AGENTS"], value: "STRATEGY_DEBATE" },
      { name: "rounds", label: "Rounds", kind: "number", value: "2" },
    ],
    build: (f, model) => [{
      run: {
        task: f.task,
        strategy: f.strategy,
        rounds: num(f.rounds),
        agents: [
          withModel(model, { name: "optimist", system_prompt: "You argue for the benefits. Be brief." }),
          withModel(model, { name: "skeptic", system_prompt: "You point out the costs and risks. Be brief." }),
        ],
      },
    }],
  },
};
