"""TravelPlanner tools and environment: official messages, renderings, CSV round trip,
episode rules, both syntaxes, fault injection."""

import json

import pytest

from questline.agent import parse_action
from questline.core import ConfigError, Task
from questline.envs import make
from questline.envs.travelplanner.database import Database
from questline.envs.travelplanner.env import format_call, format_plan, split_action
from questline.envs.travelplanner.tools import INVALID_ACTION, Tools


def small_db() -> Database:
    cities = {"Denver": "Colorado", "Austin": "Texas", "Dallas": "Texas", "Houston": "Texas", "El Paso": "Texas"}
    flights = [
        {"Flight Number": "F0000001", "Price": 200, "DepTime": "07:10", "ArrTime": "09:40",
         "ActualElapsedTime": "2 hours 30 minutes", "FlightDate": "2022-03-01", "OriginCityName": "Denver",
         "DestCityName": "Austin", "Distance": 1250.0},
        {"Flight Number": "F0000002", "Price": 180, "DepTime": "18:00", "ArrTime": "20:20",
         "ActualElapsedTime": "2 hours 20 minutes", "FlightDate": "2022-03-03", "OriginCityName": "Austin",
         "DestCityName": "Denver", "Distance": 1250.0},
    ]
    hotels = [{"NAME": "Cozy Loft", "price": 120.0, "room type": "Private room", "house_rules": "No smoking",
               "minimum nights": 1.0, "maximum occupancy": 2, "review rate number": 4.0, "city": "Austin"}]
    restaurants = [{"Name": name, "Average Cost": cost, "Cuisines": cuisines, "Aggregate Rating": 4.1, "City": "Austin"}
                   for name, cost, cuisines in [("Blue Fig", 20, "Chinese, Cafe"), ("Red Oak", 35, "American"),
                                                ("Salt Pan", 15, "Italian, Pizza"), ("Tin Cup", 25, "Mexican"),
                                                ("Lime Tree", 30, "Indian")]]
    attractions = [{"Name": name, "Latitude": 30.2, "Longitude": -97.7, "Address": "1 Main St", "Phone": "(512) 555-0101",
                    "Website": "https://example.org", "City": "Austin"} for name in ("Zilker Park", "Capitol")]
    distances = {("Denver", "Austin"): {"duration": "13 hours 40 mins", "distance": "1,481 km"},
                 ("Austin", "Denver"): {"duration": "13 hours 38 mins", "distance": "1,480 km"},
                 ("Denver", "Houston"): {"duration": "1 day 2 hours", "distance": "2,100 km"}}
    return Database(cities, flights, hotels, restaurants, attractions, distances)


QUERY = {"org": "Denver", "dest": "Austin", "days": 3, "visiting_city_number": 1,
         "date": ["2022-03-01", "2022-03-02", "2022-03-03"], "people_number": 1, "budget": 1500,
         "local_constraint": {"house rule": None, "cuisine": None, "room type": None, "transportation": None},
         "level": "easy", "query": "Plan a 3-day trip from Denver to Austin for one person, budget $1,500."}

PLAN = [
    {"days": 1, "current_city": "from Denver to Austin",
     "transportation": "Flight Number: F0000001, from Denver to Austin, Departure Time: 07:10, Arrival Time: 09:40",
     "breakfast": "-", "attraction": "Zilker Park, Austin;", "lunch": "Blue Fig, Austin", "dinner": "Red Oak, Austin",
     "accommodation": "Cozy Loft, Austin"},
    {"days": 2, "current_city": "Austin", "transportation": "-", "breakfast": "Salt Pan, Austin",
     "attraction": "Capitol, Austin;", "lunch": "Tin Cup, Austin", "dinner": "Lime Tree, Austin",
     "accommodation": "Cozy Loft, Austin"},
    {"days": 3, "current_city": "from Austin to Denver",
     "transportation": "Flight Number: F0000002, from Austin to Denver, Departure Time: 18:00, Arrival Time: 20:20",
     "breakfast": "-", "attraction": "-", "lunch": "-", "dinner": "-", "accommodation": "-"},
]


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    return str(small_db().save(tmp_path_factory.mktemp("tpdb")))


def task() -> Task:
    return Task("tp-test", "travelplanner", "easy", QUERY)


# ---------------------------------------------------------------- tools
def test_tools_answer_with_the_official_messages():
    tools = Tools(small_db())
    ok = tools.call("FlightSearch", ["Denver", "Austin", "2022-03-01"])
    assert ok.ok and "F0000001" in ok.text and "Flight Number" in ok.text
    assert tools.call("FlightSearch", ["Denver", "Austin", "2022-03-02"]).text == \
        "There is no flight from Denver to Austin on 2022-03-02."
    assert tools.call("FlightSearch", ["Denver", "Austin", "March 1"]).text == "'March 1' is not in the format YYYY-MM-DD"
    assert not tools.call("FlightSearch", ["Gotham", "Austin", "2022-03-01"]).ok
    assert tools.call("FlightSearch", ["Denver", "Austin"]).text == "Illegal Flight Search. Please try again."
    # official costs: self-driving int(km * 0.05), taxi int(km); a drive of days is no valid information
    assert tools.call("GoogleDistanceMatrix", ["Denver", "Austin", "self-driving"]).text.endswith("cost: 74")
    assert tools.call("GoogleDistanceMatrix", ["Denver", "Austin", "taxi"]).text.endswith("cost: 1481")
    assert tools.call("GoogleDistanceMatrix", ["Denver", "Houston", "taxi"]).text == "No valid information."
    assert "no valid information" in tools.call("GoogleDistanceMatrix", ["Austin", "Dallas", "taxi"]).text
    assert not tools.call("GoogleDistanceMatrix", ["Denver", "Austin", "walk"]).ok
    # the official accommodation API answers an empty city with the attraction message
    assert tools.call("AccommodationSearch", ["Dallas"]).text == "There is no attraction in this city."
    assert tools.call("RestaurantSearch", ["Dallas"]).text == "There is no restaurant in this city."
    assert tools.call("CitySearch", ["Texas"]).text == "['Austin', 'Dallas', 'Houston', 'El Paso']"
    assert tools.call("CitySearch", ["Atlantis"]).text == "Invalid State"
    assert tools.call("Teleport", ["Austin"]).text == INVALID_ACTION
    assert tools.call("NotebookWrite", ["Austin restaurants"]).text.endswith("its index is 0.")
    assert "Blue Fig" not in tools.notebook[0]["Content"]  # it stored the last search: the Texas cities


def test_compact_rendering_holds_the_same_information():
    db = small_db()
    for call in (("AccommodationSearch", ["Austin"]), ("RestaurantSearch", ["Austin"]),
                 ("AttractionSearch", ["Austin"]), ("FlightSearch", ["Denver", "Austin", "2022-03-01"])):
        table, compact = Tools(db, "table").call(*call), Tools(db, "compact").call(*call)
        assert table.rows == compact.rows
        assert len(compact.text) < len(table.text)
        for row in table.rows:
            for value in row.values():
                cell = f"{value:.1f}" if isinstance(value, float) and value.is_integer() else str(value)
                assert cell in table.text and cell in compact.text


def test_a_world_written_to_csv_and_read_back_gives_identical_tool_outputs(world_dir):
    db, back = small_db(), Database.load(world_dir)
    calls = [("FlightSearch", ["Denver", "Austin", "2022-03-01"]), ("FlightSearch", ["Austin", "Denver", "2022-03-03"]),
             ("GoogleDistanceMatrix", ["Denver", "Austin", "taxi"]), ("GoogleDistanceMatrix", ["Denver", "Houston", "taxi"]),
             ("AccommodationSearch", ["Austin"]), ("RestaurantSearch", ["Austin"]), ("AttractionSearch", ["Austin"]),
             ("CitySearch", ["Texas"])]
    for render in ("table", "compact"):
        a, b = Tools(db, render), Tools(back, render)
        for name, args in calls:
            assert a.call(name, args) == b.call(name, args), (name, args)


# ---------------------------------------------------------------- episodes
def test_oracle_like_episode_delivers_a_passing_plan(world_dir):
    env = make("travelplanner", world=world_dir)
    assert env.reset(task()).startswith("Query: ")
    for action in ("FlightSearch[Denver, Austin, 2022-03-01]", "AccommodationSearch[Austin]"):
        step = env.step(action)
        assert not step.done and "invalid_action" not in step.info
    step = env.step(format_plan(PLAN, "react"))
    assert step.done
    m = step.info["metrics"]
    assert m["delivered"] == 1.0 and m["final_pass"] == 1.0 and m["success"] == 1.0 and m["score"] == 1.0


@pytest.mark.parametrize("actions,stop", [
    (["AttractionSearch[Austin]"] * 3, "repeated_action"),
    (["Teleport[Austin]", "FlightSearch[Austin]", "hello"], "consecutive_errors"),
    (["Planner[[{'days': 1, 'current_city': 'Austin'"], "malformed_plan"),
])
def test_episode_ends_undelivered(world_dir, actions, stop):
    env = make("travelplanner", world=world_dir)
    env.reset(task())
    for action in actions:
        step = env.step(action)
    assert step.done and step.info["stop"] == stop
    assert step.info["metrics"]["delivered"] == 0.0 and step.info["metrics"]["success"] == 0.0


def test_max_steps_truncates(world_dir):
    env = make("travelplanner", world=world_dir, max_steps=2)
    env.reset(task())
    env.step("CitySearch[Texas]")
    step = env.step("AttractionSearch[Austin]")
    assert step.done and step.info["truncated"] and step.info["stop"] == "max_steps"


def test_json_syntax_round_trips_through_the_agent_parser(world_dir):
    env = make("travelplanner", world=world_dir, syntax="json")
    env.reset(task())
    call = format_call("FlightSearch", ["Denver", "Austin", "2022-03-01"], "json")
    assert call.startswith("<tool_call>") and json.loads(call[11:-12])["arguments"]["date"] == "2022-03-01"
    step = env.step(parse_action("I will search.\n" + call, "json"))
    assert "F0000001" in step.observation
    step = env.step(parse_action(format_plan(PLAN, "json"), "json"))
    assert step.done and step.info["metrics"]["final_pass"] == 1.0
    assert split_action("Planner[[1, 2]]") == ("Planner", "[1, 2]")


def test_sole_planning_accepts_a_bare_plan(world_dir):
    env = make("travelplanner", world=world_dir, mode="sole-planning")
    env.reset(task())
    step = env.step(json.dumps(PLAN))
    assert step.done and step.info["metrics"]["final_pass"] == 1.0


def test_bad_config_names_the_field(world_dir):
    with pytest.raises(ConfigError, match="env.config.mode"):
        make("travelplanner", world=world_dir, mode="three-stage")
    with pytest.raises(ConfigError, match="unknown key"):
        make("travelplanner", world=world_dir, wrold="mini")
    with pytest.raises(ConfigError, match="faults.rate"):
        make("travelplanner", world=world_dir, faults={"rate": 2})


def test_faults_are_injected_and_recorded(world_dir):
    env = make("travelplanner", world=world_dir, faults={"rate": 1.0, "kinds": ["timeout"], "exclude_infra": True})
    env.reset(task())
    step = env.step("AttractionSearch[Austin]")
    assert step.info["fault"] == "timeout" and step.info["infra_error"] and not step.done
    counts = {}
    for kind in ("error", "empty", "malformed"):
        env = make("travelplanner", world=world_dir, faults={"rate": 1.0, "kinds": [kind]})
        env.reset(task())
        for _ in range(4):  # faults never count as the agent's errors or repeats
            step = env.step("AttractionSearch[Austin]")
            assert not step.done and step.info["fault"] == kind and "invalid_action" not in step.info
        counts[kind] = env.metrics()[f"fault_{kind}"]
    assert counts == {"error": 4.0, "empty": 4.0, "malformed": 4.0}


# ---------------------------------------------------------------- generated worlds, scripted agents
MINI = {"world": "mini", "days": [3, 5, 7]}


def mini_tasks(n_per_level: int = 4, seed: int = 0, **cfg) -> list[Task]:
    from questline.envs import generate_tasks
    return [t for lvl in ("easy", "medium", "hard")
            for t in generate_tasks("travelplanner", n_per_level, lvl, seed, **{**MINI, **cfg})]


def run_scripted(tasks, policy, **cfg):
    from questline.envs.travelplanner.env import TravelPlannerEnv
    trajs = []
    for t in tasks:
        env = make("travelplanner", **{**MINI, **cfg})
        obs, observations, actions = env.reset(t), [], []
        observations.append(obs)
        while True:
            action = env.scripted_action(policy)
            step = env.step(parse_action(action, env.cfg["syntax"]))
            actions.append(action)
            observations.append(step.observation)
            if step.done:
                break
        trajs.append((t, actions, observations, step.info))
    return trajs, TravelPlannerEnv


@pytest.mark.parametrize("syntax", ["react", "json"])
def test_oracle_trajectory_replayed_through_the_env_yields_its_plan(syntax):
    from questline.envs.travelplanner.evaluate import parse_plan
    from questline.envs.travelplanner.oracle import solve
    from questline.envs.travelplanner.world import generate_world
    db = generate_world("mini", 0)
    for t, actions, observations, info in run_scripted(mini_tasks(), "oracle", syntax=syntax)[0]:
        assert info["metrics"]["final_pass"] == 1.0, t.spec
        plan = info["plan"]
        assert plan == solve(db, t.spec)
        # every entity the plan names was in what the searches returned
        seen = "\n".join(observations)
        for day in plan:
            for key in ("breakfast", "lunch", "dinner", "accommodation"):
                if day[key] != "-":
                    assert day[key].rsplit(",", 1)[0] in seen, (key, day[key])
            if day["transportation"].startswith("Flight"):
                assert day["transportation"].split(",")[0].split(": ")[1] in seen
        assert parse_plan(parse_action(actions[-1], syntax)[len("Planner["):-1] if syntax == "react"
                          else parse_action(actions[-1], syntax)[len("answer["):-1]) == plan


def test_greedy_and_random_agents_fail_where_they_should():
    tasks = mini_tasks(6)
    greedy, env_cls = run_scripted(tasks, "greedy", eval_mode="strict")
    for t, _, _, info in greedy:
        assert info["metrics"]["delivered"] == 1.0
        if t.difficulty in ("medium", "hard"):  # local constraints bind by construction
            assert info["metrics"]["final_pass"] == 0.0, t.spec
    rand, _ = run_scripted(tasks, "random")
    assert sum(info["metrics"]["final_pass"] for *_, info in rand) == 0
    assert all(info["metrics"]["delivered"] == 1.0 for *_, info in rand)


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2])
def test_fault_injection_rates_run_to_completion_and_are_recorded(rate):
    from questline.agent import ChatTokens
    from questline.data.corpus import oracle_texts
    from questline.models import train_tokenizer
    from questline.rollout import RolloutConfig, rollout
    cfg = {**MINI, "faults": {"rate": rate}}
    tasks = mini_tasks(4, **cfg)
    tok = train_tokenizer(oracle_texts(tasks[:3], MINI), vocab_size=512)
    trajs = rollout(None, ChatTokens(tok), tasks * 3, RolloutConfig(max_turns=30, max_context_tokens=100_000),
                    policy="oracle", env_cfg=cfg)
    assert all(t.done and not t.infra_failed for t in trajs)
    faults = sum(t.metrics["faults"] for t in trajs)
    flagged = sum(1 for t in trajs for turn in t.turns if turn.info.get("fault"))
    assert faults == flagged
    calls = sum(len(t.turns) - 1 for t in trajs)
    if rate == 0.0:
        assert faults == 0 and all(t.success for t in trajs)
    else:
        assert 0 < faults and abs(faults / calls - rate) < 3 * (rate / calls) ** 0.5 + 0.05
        # the oracle retries a faulted search, so it still delivers its plan
        assert all(t.metrics["delivered"] == 1.0 for t in trajs)


@pytest.mark.parametrize("agent,expect", [("oracle", 1.0), ("greedy", None), ("random", 0.0)])
def test_questline_eval_prints_the_official_table_for_scripted_agents(capsys, tmp_path, agent, expect):
    from questline.cli import main
    overrides = ["data.eval_size=24", "env.config.days=[3, 5, 7]", f"run.dir={tmp_path}/run", "rollout.max_turns=30",
                 "rollout.max_new_tokens=2048", "rollout.max_context_tokens=100000"]
    assert main(["eval", "quickstart", *overrides, "--agent", agent]) == 0
    out = capsys.readouterr().out
    assert "Final pass" in out and "Commonsense macro" in out
    final = float(out.split("success")[1].split("%")[0])
    by_level = json.loads(out.split("by difficulty ")[1].split("\n")[0].replace("'", '"'))
    if expect is not None:
        assert final == 100 * expect
    else:  # greedy: cheapest everywhere; local constraints bind, so it never passes a hard query
        assert by_level["hard"] == 0.0 and by_level["medium"] == 0.0


@pytest.mark.slow
def test_pipeline_trains_on_travelplanner_with_faults_and_records_them(tmp_path):
    """SFT + one RL iteration + evaluations, end to end, with 20% of searches faulted."""
    from questline.experiments.recipe import recipe_from_dict
    from questline.train.pipeline import Pipeline
    recipe = recipe_from_dict({
        "env": {"name": "travelplanner", "config": {"world": "mini", "days": [3], "render": "compact",
                                                    "faults": {"rate": 0.2}}},
        "data": {"train_size": 12, "mix": {"easy": 1, "hard": 1}, "eval_size": 4,
                 "eval_mix": {"easy": 1, "hard": 1}, "tokenizer_corpus_tasks": 12},
        "model": {"preset": "xs", "vocab_size": 512},
        "budget": {"episodes": 12, "sft_fraction": 0.34},
        "sft": {"epochs": 1, "batch_size": 4},
        "rl": {"reward": "tp_staged", "reward_args": {"format_penalty": 0.1}, "tasks_per_iter": 2,
               "group_size": 4, "minibatch_size": 8, "micro_batch_size": 4},
        "rollout": {"max_turns": 8, "max_new_tokens": 48, "max_context_tokens": 2048},
        "eval": {"untrained_size": 2},
        "run": {"progress": False},
    }, [f"run.dir={tmp_path}"])
    results = Pipeline(recipe).run()
    assert {"untrained", "sft", "rl"} <= set(results)
    untrained, sft = results["untrained"]["greedy"], results["sft"]["greedy"]
    assert untrained["n"] == 2 and set(untrained["by_difficulty"]) == {"easy", "hard"}  # every k-th: the mix holds
    assert sft["n"] == 4 and set(untrained["per_task"]) < set(sft["per_task"])
    assert set(results["rl"]["greedy"]["env_metrics"]) == {
        "delivery_rate", "commonsense_micro", "commonsense_macro", "hard_micro", "hard_macro", "final_pass",
        "official_would_crash"}  # official mode: plans the official eval.py would crash on
    demos = [json.loads(line) for line in (tmp_path / "demos.jsonl").read_text().splitlines()]
    faulted = [turn for d in demos for turn in d["turns"] if turn["info"].get("fault")]
    assert faulted and all(d["metrics"]["faults"] == sum(1 for t in d["turns"] if t["info"].get("fault"))
                           for d in demos)


def test_json_arguments_are_matched_by_name_never_by_position(world_dir):
    env = make("travelplanner", world=world_dir, syntax="json")
    env.reset(task())

    def step(arguments, name="FlightSearch"):
        return env.step(parse_action(f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>",
                                     "json"))

    # keys in another order than the signature: still Denver -> Austin (F0000001), not the reverse flight
    s = step({"date": "2022-03-01", "destination_city": "Austin", "departure_city": "Denver"})
    assert "F0000001" in s.observation and "F0000002" not in s.observation and not s.info.get("invalid_action")
    s = step({"destination_city": "Denver", "departure_city": "Austin", "date": "2022-03-03"})
    assert "F0000002" in s.observation and "F0000001" not in s.observation
    for arguments, expect in (({"from": "Denver", "to": "Austin", "date": "2022-03-01"}, "no argument(s) from, to"),
                              ({"departure_city": "Denver", "date": "2022-03-01"}, "missing argument(s) destination_city"),
                              ({"departure_city": "Denver", "destination_city": ["Austin"], "date": "2022-03-01"},
                               "'destination_city' of FlightSearch must be str")):
        s = step(arguments)
        assert s.info["invalid_action"] and expect in s.observation, (arguments, s.observation)
        env.step("CitySearch[Texas]")  # break the error streak
    # a value with a comma is one argument (once it split into extra ones)
    s = step({"departure_city": "Denver, Colorado", "destination_city": "Austin", "date": "2022-03-01"})
    assert s.info["invalid_action"] and s.observation.startswith("Denver, Colorado is not valid city")
    s = step({"description": "flights, Denver to Austin"}, name="NotebookWrite")
    assert not s.info.get("invalid_action") and env.tools.notebook[-1]["Short Description"] == "flights, Denver to Austin"


def test_plans_the_official_evaluator_crashes_on_are_counted(world_dir):
    """Each episode says whether the official eval.py would raise on its plan (it then reports
    nothing for the whole file); aggregate() gives the share, next to the official metrics."""
    from types import SimpleNamespace
    lower = [dict(PLAN[0], transportation=PLAN[0]["transportation"].replace("Flight Number", "flight number"))] + PLAN[1:]
    episodes = []
    for plan in (PLAN, lower, [PLAN[0], {}, PLAN[2]]):  # valid, crashes when judged, crashes (malformed here)
        env = make("travelplanner", world=world_dir)
        env.reset(task())
        step = env.step(format_plan(plan, "react"))
        episodes.append(SimpleNamespace(metrics=step.info["metrics"], task=task()))
    assert [e.metrics["official_would_crash"] for e in episodes] == [0.0, 1.0, 1.0]
    assert [e.metrics["delivered"] for e in episodes] == [1.0, 1.0, 0.0]
    totals = type(env).aggregate(episodes)
    assert totals["official_would_crash"] == pytest.approx(2 / 3) and totals["final_pass"] == pytest.approx(1 / 3)
    env = make("travelplanner", world=world_dir, eval_mode="strict")
    env.reset(task())
    assert "official_would_crash" not in env.step(format_plan(lower, "react")).info["metrics"]
