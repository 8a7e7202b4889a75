"""TextWorld games on the real engine: families and knobs (families.py), generation
and the game cache (games.py), observation text (text.py), the env (env.py).
Needs the `textworld` extra: pip install 'questline[textworld]'."""
