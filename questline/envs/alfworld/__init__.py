"""ALFWorld on the `alfworld` package's real text engine, offline: procedural scenes
(scenes.py), the engine (engine.py), the official data loader (data.py), the env (env.py).
Needs the extra: pip install 'questline[alfworld]'."""
