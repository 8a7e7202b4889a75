"""TravelPlanner (Xie et al. 2024): an offline world in the official schema, the
official tools, query synthesis, an oracle solver and the official evaluator."""
