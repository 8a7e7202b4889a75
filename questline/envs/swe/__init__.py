"""SWE: repository bug fixing judged by tests (SWE-Gym style), offline.

  mutations.py  bug injection by AST mutation operators
  tasks.py      verified task synthesis from the project templates in projects/
  sandbox.py    per-episode directory with resource limits, no network, confined paths
  testrun.py    pytest runs in a sandbox, per-test outcomes
  tools.py      the agent's tools and the ReAct / JSON syntaxes
  env.py        the environment
  instances.py  SWE-Gym / SWE-bench style records on local git repositories
"""
