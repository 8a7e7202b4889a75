"""Make golden.jsonl.gz: Crafter texts from BALROG's own code (see README.md here).

Run in a throw-away venv (Python 3.11: crafter==1.8.3 gym==0.23.0 gymnasium scipy pillow
omegaconf tqdm openai) with BALROG's `balrog/` package at BALROG_DIR (its commit in
COMMIT), never with questline's venv:

    python make_golden.py OUT.jsonl.gz EXPERT.json [--no-patch]

EXPERT.json maps a seed to questline's expert actions on it ({"7": ["Noop", ...]}).
It runs BALROG's Evaluator.run_episode (make_env -> CrafterLanguageWrapper ->
GymV21CompatibilityV0 -> EnvWrapper, the evaluator loop with its invalid-action notice)
with BALROG's NaiveAgent and HistoryPromptBuilder, whose LLM client is replaced by a
scripted one that replays fixed completions and records the last user message of each
prompt, minus the naive agent's one-action line: the per-step observation text.
"""

import csv
import gzip
import json
import os
import random
import sys
import tempfile
import types

BALROG_DIR = os.environ.get("BALROG_DIR", "/tmp/crafter-balrog/BALROG")
COMMIT = "af7d1f17e0deec3a7a0e334beae5f11b7a21371b"
sys.path.insert(0, BALROG_DIR)
_client = types.ModuleType("balrog.client")  # the LLM clients (openai, anthropic, ...) are not needed
_client.create_llm_client = lambda cfg: None
_client.LLMClientWrapper = object
sys.modules["balrog.client"] = _client
for _name in ("nle", "nle.env", "nle.env.base"):  # imported by BALROG's NetHack time-limit wrapper only
    sys.modules[_name] = types.ModuleType(_name)
sys.modules["nle.env.base"].NLE = object

import crafter  # noqa: E402
from balrog.agents.dummy import LLMResponse  # noqa: E402
from balrog.agents.naive import NaiveAgent  # noqa: E402
from balrog.environments.crafter import ACTIONS, get_instruction_prompt  # noqa: E402
from balrog.evaluator import Evaluator  # noqa: E402
from balrog.prompt_builder import create_prompt_builder  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

PATCH = "--no-patch" not in sys.argv
if PATCH:  # questline's Sim fix: a chunk's creatures are balanced in position order, not set order
    _balance = crafter.Env._balance_chunk
    crafter.Env._balance_chunk = lambda self, chunk, objs: _balance(
        self, chunk, sorted(objs, key=lambda o: (int(o.pos[0]), int(o.pos[1]))))

NAIVE = ("You always have to output one of the above actions at a time and no other text. "
         "You always have to output an action until the episode terminates.")
INVALID = "Dance"  # not an action: BALROG plays Noop and says so in the next observation
POOL = ACTIONS + ["Move West", "Move East", "Move North", "Move South"] * 2 + ["Do"] * 2 + [INVALID]
ALT = {"unique_items": False, "precise_location": True, "skip_items": ["grass", "sand", "path"],
       "edge_only_items": ["water", "lava"]}  # the alternatives config.yaml names in its comments
UNIQUE_PRECISE = {"unique_items": True, "precise_location": True}


class ScriptedClient:
    def __init__(self, completions):
        self.completions, self.observations = iter(completions), []

    def generate(self, messages):
        text = messages[-1].content
        assert messages[-1].role == "user" and text.endswith("\n\n" + NAIVE)
        self.observations.append(text[: -len("\n\n" + NAIVE)])
        return LLMResponse("scripted", next(self.completions), "stop", 0, 0, None)


def run(seed, completions, settings):
    cfg = OmegaConf.load(f"{BALROG_DIR}/balrog/config/config.yaml")
    cfg.envs.env_kwargs.seed = seed
    cfg.envs.crafter_kwargs.seed = seed  # BALROG's env_kwargs.seed does not reach crafter's world generator
    for key, value in settings.items():
        cfg.envs.crafter_kwargs[key] = value
    cfg.eval.max_steps_per_episode = len(completions)
    out = tempfile.mkdtemp()
    client = ScriptedClient(completions)
    agent = NaiveAgent(lambda: client, create_prompt_builder(cfg.agent))
    Evaluator("crafter", cfg, output_dir=out).run_episode("default", agent)
    with open(f"{out}/crafter/default/default_run_00.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, escapechar="˘"))
    n = len(client.observations)
    return {"seed": seed, "settings": settings, "actions": list(completions[:n]),
            "observations": client.observations, "last_long_term": rows[-1]["Observation"],
            "rewards": [float(r["Reward"]) for r in rows], "dones": [r["Done"] == "True" for r in rows]}


def random_actions(seed, n):
    rng = random.Random(seed)
    return [rng.choice(POOL) for _ in range(n)]


def main():
    target, expert = sys.argv[1], json.load(open(sys.argv[2]))
    episodes = [run(seed, random_actions(seed, 300), {}) for seed in (1, 7, 10, 11)]  # random play lasts
    episodes += [run(int(seed), acts, {}) for seed, acts in expert.items()]          # >= 200 steps on these
    episodes.append(run(10, random_actions(10, 300), ALT))
    episodes.append(run(11, random_actions(11, 300), UNIQUE_PRECISE))
    header = {
        "balrog": "github.com/balrog-ai/BALROG", "balrog_commit": COMMIT, "crafter": "1.8.3", "gym": "0.23.0",
        "config": "balrog/config/config.yaml defaults (crafter_kwargs: area 64x64, view 9x9, size 256x256, "
                  "max_episode_steps 2000, unique_items True, precise_location False, skip_items [], "
                  "edge_only_items []; agent naive, max_text_history 16; feedback_on_invalid_action True); "
                  "per episode: crafter_kwargs.seed = env_kwargs.seed = seed, plus its 'settings'",
        "determinism": ("crafter.Env._balance_chunk patched to balance a chunk's creatures in position order "
                        "(as questline's Sim), since crafter 1.8.3 iterates a set of objects") if PATCH else "none",
        "observation": "the last user message of BALROG's prompt at each step, minus the naive agent's one-action "
                       "line; observations[i] is shown before actions[i]; rewards[i], dones[i] follow actions[i]; "
                       "last_long_term is the view after the last action",
        "actions": "random.Random(seed).choice over the 17 actions, extra moves and Do, and the invalid 'Dance'; "
                   "the second seed-7 episode replays questline's expert",
        "instruction_prompt": get_instruction_prompt("default"), "naive_instruction": NAIVE,
        "generator": "tests/data/balrog_crafter/make_golden.py (Evaluator.run_episode, NaiveAgent, scripted client)",
    }
    with gzip.open(target, "wt", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for ep in episodes:
            f.write(json.dumps(ep) + "\n")
    print("wrote", target, [len(e["observations"]) for e in episodes])


if __name__ == "__main__":
    main()
