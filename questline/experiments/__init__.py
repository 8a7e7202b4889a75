from questline.experiments.recipe import Recipe, load_recipe

__all__ = ["Recipe", "load_recipe"]
