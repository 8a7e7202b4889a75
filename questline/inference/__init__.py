from questline.inference.base import Engine, Generation, SamplingParams
from questline.inference.hf_engine import HFEngine

__all__ = ["Engine", "Generation", "HFEngine", "SamplingParams"]
