"""The real ALFWorld text engine, offline: textworld's PDDL environment (`PddlEnv`,
Fast Downward underneath) wrapped with alfworld's `AlfredDemangler`, loading a game
made of the package's `alfred.pddl` domain, its `alfred.twl2` grammar with the goal
text in place of "UNKNOWN GOAL" (as alfworld's `add_task_to_grammar` does) and a PDDL
problem. This is what alfworld's `AlfredTWEnv` runs for each `game.tw-pddl` file.

Speed-ups, none of which changes what the engine computes (a test replays episodes
with and without them and compares every observation and admissible command):
- the PDDL -> SAS translation is memoised per problem (a reset translates the problem
  twice, load twice more, and every sample of a group loads the same problem);
- textworld re-parses each grammar template and fact query with TatSu at every step;
  those parses are memoised (5x faster steps);
- loaded engines are pooled and reused. Each engine dlopens its own copy of
  libdownward.so (34 MB; fast_downward copies it to a temp dir and deletes the file),
  and a loaded library is never unloaded: an engine dropped from the pool keeps its
  deleted copy on disk until the process exits. So every engine ever made stays in the
  pool (as many as episodes were ever open at once); capping the pool at 64 leaked
  ~6.5 GB per RL iteration of 256 concurrent episodes and filled the disk (ENOSPC).
fast_downward's translator keeps its options in module globals and overwrites
`sys.argv`: translation runs under a lock and `sys.argv` is restored.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import sys
import threading
from collections import OrderedDict

_LOCK = threading.RLock()
_POOL: list = []  # idle engines, reused by the next episode (never dropped: see above)
_memo_on = False
_originals: dict = {}


@functools.cache
def domain() -> str:
    from alfworld.info import ALFRED_PDDL_PATH
    with open(ALFRED_PDDL_PATH) as f:
        return f.read()


@functools.cache
def grammar() -> str:
    from alfworld.info import ALFRED_TWL2_PATH
    with open(ALFRED_TWL2_PATH) as f:
        return f.read()


def game_data(problem: str, goal: str) -> dict:
    """A `game.tw-pddl` document (what alfworld-generate writes) for a problem and goal text."""
    return {"pddl_domain": domain(), "grammar": grammar().replace("UNKNOWN GOAL", goal),
            "pddl_problem": problem}


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class _CachedTranslator:
    """Stands in for the `fast_downward` module inside textworld's PDDL logic only."""

    def __init__(self, module):
        self._module = module
        self._cache = _LRU(256)

    def __getattr__(self, name):
        return getattr(self._module, name)

    def pddl2sas(self, domain: str, problem: str, verbose: bool = False, optimize: bool = False):
        key = (hashlib.sha1((domain + "\0" + problem).encode()).hexdigest(), optimize)
        with _LOCK:
            if key not in self._cache:
                argv = sys.argv
                try:
                    self._cache.put(key, self._module.pddl2sas(domain, problem, verbose=verbose,
                                                               optimize=optimize))
                finally:
                    sys.argv = argv
            return self._cache[key]


class _CachedQueries:
    """Stands in for `textworld.logic.Rule` inside textworld's grammar module only."""

    def __init__(self, rule_cls):
        self.parse_conjunctive_query = functools.lru_cache(4096)(rule_cls.parse_conjunctive_query)


def memoize(on: bool = True) -> None:
    """Install (or remove) the memoised translator and parsers in textworld's PDDL modules."""
    global _memo_on
    import textworld.envs.pddl.logic as logic
    import textworld.envs.pddl.textgen as textgen
    with _LOCK:
        if not _originals:
            _originals.update(fd=logic.fast_downward, parse=textgen._parse_and_convert, rule=textgen.Rule)
        if on == _memo_on:
            return
        if not on:
            logic.fast_downward = _originals["fd"]
            textgen._parse_and_convert = _originals["parse"]
            textgen.Rule = _originals["rule"]
        else:
            logic.fast_downward = _CachedTranslator(_originals["fd"])
            parses = _LRU(4096)
            parse = _originals["parse"]

            def cached_parse(text, rule_name=None, trace=False):
                key = (text, rule_name)
                if key not in parses:
                    parses.put(key, parse(text, rule_name=rule_name, trace=trace))
                return copy.deepcopy(parses[key])  # derivations set contexts on their symbols

            textgen._parse_and_convert = cached_parse
            textgen.Rule = _CachedQueries(_originals["rule"])
        _memo_on = on


def _new_engine():
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs.pddl import PddlEnv
    return AlfredDemangler(PddlEnv(textworld.EnvInfos(admissible_commands=True, won=True)))


class AlfredGame:
    """One game on the real engine: start, step, admissible commands, win, planner."""

    def __init__(self):
        self._env = None
        self.state = None

    def start(self, data: dict) -> str:
        """Load a game document and reset; returns the engine's first text."""
        memoize(True)
        with _LOCK:
            if self._env is None:
                self._env = _POOL.pop() if _POOL else _new_engine()
            argv = sys.argv
            try:
                self._env.load(data)
                self.state = self._env.reset()
            finally:
                sys.argv = argv
        return self.state.feedback

    def step(self, command: str) -> str:
        """Apply a command; an inadmissible one changes nothing ("Nothing happens.")."""
        self.state, _, _ = self._env.step(command)
        return self.state.feedback

    @property
    def admissible(self) -> list[str]:
        return list(self.state["admissible_commands"])

    @property
    def won(self) -> bool:
        return bool(self.state["won"])

    def plan(self) -> list[str]:
        """Fast Downward's plan from the current state, as commands (the planner expert's
        `policy_commands`); [] when the goal cannot be reached."""
        return self._env._pddl_state.replan(self._env._entity_infos)

    def facts(self) -> list:
        """The current state's true facts (textworld Propositions over mangled ids)."""
        return self.state["_facts"]

    def names(self) -> dict[str, str]:
        """Mangled id -> displayed name ("apple_bar_01" -> "apple 2")."""
        return {k: v.name for k, v in self._env._entity_infos.items()}

    def close(self) -> None:
        if self._env is not None:
            with _LOCK:
                _POOL.append(self._env)
            self._env = None
