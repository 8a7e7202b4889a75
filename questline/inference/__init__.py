from questline.inference.base import ChatReply, Engine, Generation, SamplingParams, TextEngine
from questline.inference.hf_engine import HFEngine

__all__ = ["ChatReply", "Engine", "Generation", "HFEngine", "SamplingParams", "TextEngine"]
