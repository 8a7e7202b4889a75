from questline.envs.base import (
    DIFFICULTIES,
    Env,
    ToolError,
    call_tool,
    env_class,
    generate_tasks,
    make,
    parse_tool_call,
    prepare,
    register,
    registered,
    tool,
)

register("toy/maze", "questline.envs.toy.maze:MazeEnv")
register("toy/shop", "questline.envs.toy.shop:ShopEnv")
register("travelplanner", "questline.envs.travelplanner.env:TravelPlannerEnv")
register("swe", "questline.envs.swe.env:SweEnv")
register("crafter", "questline.envs.crafter.env:CrafterEnv")
register("textworld", "questline.envs.textworld.env:TextWorldEnv")
register("alfworld", "questline.envs.alfworld.env:AlfworldEnv")

__all__ = [
    "DIFFICULTIES", "Env", "ToolError", "call_tool", "env_class", "generate_tasks", "make",
    "parse_tool_call", "prepare", "register", "registered", "tool",
]
