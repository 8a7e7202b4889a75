"""Dynamic planning: an agent mode that works in any environment.

Output format (arXiv 2509.03581): optionally one `<plan>...</plan>` block, then exactly
one action; a reply without a plan block keeps the previous plan in force. Only the
latest plan is kept: in `rollout.context: window` each turn's prompt shows it as
"Current plan (made N steps ago): ..." above the latest observation; in `full` context
the whole history (older plans included) stays in the sequence, as it was sampled.

Strategies and how each is enforced
  dynamic   the model decides; any well-formed plan replaces the current one.
  always    a plan is required every turn: the turn's prompt ends with the forced
            prefix "<plan>" (prompt tokens, not policy tokens), so the model can
            only continue the plan block.
  every_k   the same forced prefix on turns 0, k, 2k, ...; on other turns a plan
            block is not allowed.
  never     no plans allowed.
A plan written where it is not allowed is ignored (the previous plan stays in force,
the action still runs) and counted in `plan_violations`; the system prompt states
the rule. A `<plan>` that is never closed, or a reply with nothing after the plan,
is malformed: the action is empty, so the environment answers with its own
invalid-action observation (never an exception).

Plan cost: each turn records `plan_tokens`, the sampled (policy) tokens of its plan
block (a forced "<plan>" prefix and a human's plan are prompt tokens and cost
nothing); RL subtracts `plan_cost * plan_tokens` from that turn's reward.

Human steering: a given plan is put in the turn's prompt as the forced prefix
"<plan>{plan}</plan>\\n", i.e. in context exactly as if the agent had just written
it, and becomes the current plan; the model then writes only the action.

Metrics per episode (`planning_metrics`) and over episodes (`aggregate_planning`):
plans, plan_frequency (plans / turns), plan_tokens, plan_length (tokens per plan),
plan_steps (turns each plan stays in force), policy_tokens, plan_violations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STRATEGIES = ("never", "always", "every_k", "dynamic")
OPEN, CLOSE = "<plan>", "</plan>"
_BLOCK = re.compile(r"^\s*<plan>(.*?)</plan>\s*", re.DOTALL)


@dataclass(frozen=True)
class PlanningConfig:
    strategy: str = "dynamic"
    k: int = 4  # every_k: plan on turns 0, k, 2k, ...
    plan_cost: float = 0.0  # reward per sampled plan token (subtracted)
    max_plan_tokens: int = 32  # extra generation budget on turns a plan may be written
    # synthetic SFT data (questline.agent.plan_synth)
    extra_rate: float = 0.15  # dynamic: chance of an extra plan at any other turn
    horizon: int = 3  # subgoals (or oracle actions) a synthetic plan looks ahead

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"planning.strategy: '{self.strategy}' is not one of {', '.join(STRATEGIES)}")
        if self.k < 1:
            raise ValueError(f"planning.k must be >= 1, got {self.k}")

    def may_plan(self, turn: int) -> bool:
        return self.strategy == "dynamic" or self.must_plan(turn)

    def must_plan(self, turn: int) -> bool:
        return self.strategy == "always" or (self.strategy == "every_k" and turn % self.k == 0)


@dataclass
class Reply:
    plan: str | None  # the plan block's text (stripped), None when there is none
    action: str  # the text after the plan block ("" when malformed)
    error: str = ""  # why the reply is malformed


def parse_reply(text: str) -> Reply:
    """Split `<plan>...</plan> action` (or a bare action). Never raises."""
    if OPEN not in text:
        if CLOSE in text:
            return Reply(None, "", "'</plan>' without '<plan>'")
        return Reply(None, text)
    m = _BLOCK.match(text)
    if not m:
        if CLOSE not in text:
            return Reply(None, "", "'<plan>' is never closed")
        return Reply(None, "", "the plan block must come first")
    rest = text[m.end():]
    if OPEN in rest or CLOSE in rest:
        return Reply(m.group(1).strip(), "", "more than one plan block")
    if not rest.strip():
        return Reply(m.group(1).strip(), "", "no action after the plan")
    return Reply(m.group(1).strip(), rest)


def instructions(cfg: PlanningConfig) -> str:
    """The planning rules appended to the environment's system prompt."""
    rule = {
        "dynamic": "You may start a reply with a plan in <plan>...</plan>, then exactly one action. "
                   "Plan when it helps; otherwise reply with the action alone and the current plan stays.",
        "always": "Start every reply with a plan in <plan>...</plan>, then exactly one action.",
        "every_k": f"Every {cfg.k} steps (starting now) start the reply with a plan in <plan>...</plan>, "
                   "then exactly one action; at other steps reply with the action alone.",
        "never": "Reply with the action alone; do not write plans.",
    }[cfg.strategy]
    return f"Planning: {rule}"


def render_window(observation: str, plan: str | None, age: int) -> str:
    """The user message of a window-mode turn: the current plan (if any) above the
    latest observation."""
    if plan is None:
        return observation
    return f"Current plan (made {age} steps ago): {plan}\n\n{observation}"


def given_plan_prefix(plan: str) -> str:
    return f"{OPEN}{plan.strip()}{CLOSE}\n"


@dataclass
class PlanTracker:
    """One episode's plan memory and the per-turn enforcement of the strategy."""

    cfg: PlanningConfig
    plan: str | None = None
    made_at: int = 0
    pending_given: str | None = None  # a human's plan for the next turn
    history: list[dict] = field(default_factory=list)

    def give(self, plan: str) -> None:
        """Steering: the next turn starts from this plan."""
        self.pending_given = plan.strip()

    def prefix(self, turn: int) -> str:
        """Text forced at the start of this turn's reply (prompt tokens)."""
        if self.pending_given:
            return given_plan_prefix(self.pending_given)
        return OPEN if self.cfg.must_plan(turn) else ""

    def max_new_tokens(self, turn: int, action_budget: int) -> int:
        return action_budget + (self.cfg.max_plan_tokens if self.cfg.may_plan(turn) else 0)

    def window_text(self, observation: str, turn: int) -> str:
        return render_window(observation, self.plan, turn - self.made_at)

    def accept(self, turn: int, prefix: str, sampled: str, plan_tokens: int) -> tuple[str, dict]:
        """Take this turn's reply (forced prefix + sampled text) -> (action text, info
        to record on the turn)."""
        reply = parse_reply(prefix + sampled)
        given, self.pending_given = self.pending_given, None
        info: dict = {"plan_tokens": 0 if given else plan_tokens}
        if reply.error:
            info["plan_error"] = reply.error
        if given:  # a person's plan is in force whatever the model wrote after it
            self.plan, self.made_at = given, turn
            info["plan"], info["plan_source"] = given, "given"
        elif reply.plan is not None and not reply.error:
            if self.cfg.may_plan(turn):
                self.plan, self.made_at = reply.plan, turn
                info["plan"], info["plan_source"] = reply.plan, "agent"
            else:
                info["plan_violation"] = "plan not allowed at this turn"
        elif self.cfg.must_plan(turn):
            info["plan_violation"] = "plan required at this turn"
        return reply.action, info


def plan_token_count(decode, prefix_ids: list[int], ids: list[int]) -> int:
    """How many of the sampled `ids` belong to the plan block: up to the id that
    completes '</plan>' (0 when the block was opened and closed in the prefix, or
    never opened)."""
    if CLOSE in decode(prefix_ids) or OPEN not in decode(prefix_ids + ids):
        return 0
    for i in range(1, len(ids) + 1):
        if CLOSE in decode(prefix_ids + ids[:i]):
            return i
    return len(ids)  # never closed: all of it was spent on the plan


PLANNING_METRICS = ("plans", "plan_frequency", "plan_tokens", "plan_length", "plan_steps",
                    "policy_tokens", "plan_violations")


def planning_metrics(turn_infos: list[dict], policy_tokens: int) -> dict[str, float]:
    """Per-episode planning metrics from the turns' info dicts. Agent plans only: a
    human's plan is not counted as a plan the agent made (its tokens cost nothing),
    but it ends the agent plan before it."""
    n = len(turn_infos)
    starts = [i for i, info in enumerate(turn_infos) if "plan" in info] + [n]
    in_force = [starts[j + 1] - starts[j] for j in range(len(starts) - 1)
                if turn_infos[starts[j]].get("plan_source") == "agent"]
    plans = len(in_force)
    tokens = sum(int(info.get("plan_tokens", 0)) for info in turn_infos)
    return {
        "turns": float(n),
        "plans": float(plans),
        "plan_frequency": plans / n if n else 0.0,
        "plan_tokens": float(tokens),
        "plan_length": tokens / plans if plans else 0.0,
        "plan_steps": sum(in_force) / plans if plans else 0.0,
        "policy_tokens": float(policy_tokens),
        "plan_violations": float(sum("plan_violation" in info for info in turn_infos)),
    }


def aggregate_planning(episodes: list[dict[str, float]]) -> dict[str, float]:
    """Over episodes (their metrics dicts): frequency, plan length and steps in force
    as ratios of totals (every plan and turn weighs the same), tokens as means per
    episode. {} when no episode has planning metrics."""
    eps = [m for m in episodes if "plans" in m]
    if not eps:
        return {}
    total = lambda k: sum(m.get(k, 0.0) for m in eps)  # noqa: E731
    plans, turns = total("plans"), total("turns")
    steps = sum(m.get("plan_steps", 0.0) * m.get("plans", 0.0) for m in eps)
    return {
        "plan_frequency": plans / turns if turns else 0.0,
        "plan_length": total("plan_tokens") / plans if plans else 0.0,
        "plan_steps": steps / plans if plans else 0.0,
        "plans_per_episode": plans / len(eps),
        "plan_tokens_per_episode": total("plan_tokens") / len(eps),
        "tokens_per_episode": total("policy_tokens") / len(eps),
        "plan_violations_per_episode": total("plan_violations") / len(eps),
    }
