from questline.core.errors import ConfigError, QuestlineError
from questline.core.seeding import derive_seed, seed_everything, torch_generator
from questline.core.types import Batch, Step, Task, Trajectory, Turn

__all__ = [
    "Batch", "ConfigError", "QuestlineError", "Step", "Task", "Trajectory", "Turn",
    "derive_seed", "seed_everything", "torch_generator",
]
