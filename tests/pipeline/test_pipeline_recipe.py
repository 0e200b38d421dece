"""Recipes: YAML round trip, key-naming errors for types and meanings, CLI flag names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detprune.pipeline.recipe import (EvalSpec, FinetuneSpec, PruneSpec, Recipe, RecipeError, load_recipe,
                                      recipe_from_dict)
from detprune.pipeline.validate import flag_for, validate


def _full() -> Recipe:
    return Recipe(model="yolov8n", data="synthetic:16", img_size=64, threads=1, name="x",
                  prune=PruneSpec(criteria=["l1", "l2"], target="macs=0.5", round_to=8, ignore=["head"]),
                  finetune=FinetuneSpec(epochs=3, lr=0.004), eval=EvalSpec(max_images=5))


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    r = _full()
    path = r.save(tmp_path / "config.yaml")
    back = load_recipe(path)
    assert back == r
    text = path.read_text()
    assert "lr: 0.004" in text and "bench" not in text  # absent stages stay absent
    assert back.save(tmp_path / "again.yaml").read_text() == text  # resolving is idempotent


def test_defaults_are_written_out() -> None:
    d = recipe_from_dict({"model": "yolov8n", "finetune": None, "prune": {"criterion": "l1", "ratio": 0.2}}).to_dict()
    assert d["finetune"]["epochs"] == FinetuneSpec().epochs and d["finetune"]["lr"] == 0.002
    assert d["prune"]["criteria"] == ["l1"] and d["prune"]["ratio"] == 0.2
    assert d["report"]["samples"] == 4


@pytest.mark.parametrize("data, key, words", [
    ({"model": "yolov8n", "prune": {"ratoi": 0.3}}, "prune.ratoi", "unknown key"),
    ({"model": "yolov8n", "img_size": "big"}, "img_size", "integer"),
    ({"model": "yolov8n", "prune": {"ratio": "half"}}, "prune.ratio", "number"),
    ({"model": "yolov8n", "finetune": {"augment": "yes"}}, "finetune.augment", "true or false"),
    ({"data": "synthetic"}, "model", "required"),
    ({"model": "yolov8n", "prune": {"criterion": "l1", "criteria": ["l2"]}}, "prune.criterion", "not both"),
])
def test_type_errors_name_the_key(data: dict, key: str, words: str) -> None:
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(data)
    assert err.value.key == key and words in str(err.value)


@pytest.mark.parametrize("change, key, words", [
    ({"prune": PruneSpec(ratio=1.5)}, "prune.ratio", "[0, 1)"),
    ({"prune": PruneSpec(ratio=-0.1)}, "prune.ratio", "[0, 1)"),
    ({"prune": PruneSpec(criteria=["nope"], ratio=0.3)}, "prune.criteria[0]", "unknown criterion 'nope'"),
    ({"prune": PruneSpec(ratio=0.3, target="macs=0.5")}, "prune.ratio", "exactly one"),
    ({"prune": PruneSpec(target="flops=2")}, "prune.target", "cannot read target"),
    ({"model": "missing.safetensors"}, "model", "does not exist"),
    ({"model": "yolov99"}, "model", "unknown model 'yolov99'"),
    ({"model": "torchvision:nope"}, "model", "unknown torchvision detector"),
    ({"data": "no/such/data.yaml"}, "data", "does not exist"),
    ({"data": "synthetic:x"}, "data", "bad synthetic spec"),
    ({"img_size": 100}, "img_size", "multiple of 32"),
    ({"eval": EvalSpec(max_images=0)}, "eval.max_images", ">= 1"),
])
def test_validation_names_the_key(change: dict, key: str, words: str) -> None:
    r = Recipe(**{**dict(model="yolov8n", data="synthetic:16", img_size=64), **change})
    with pytest.raises(RecipeError) as err:
        validate(r)
    assert err.value.key == key and words in str(err.value)


def test_stage_without_data_is_rejected() -> None:
    with pytest.raises(RecipeError, match="data: is required by the finetune, eval"):
        validate(Recipe(model="yolov8n", finetune=FinetuneSpec(epochs=1), eval=EvalSpec()))


def test_unavailable_criteria_may_be_skipped() -> None:
    validate(Recipe(model="yolov8n", prune=PruneSpec(criteria=["l1", "not-yet"], ratio=0.3, skip_unavailable=True)))
    with pytest.raises(RecipeError, match="none of"):
        validate(Recipe(model="yolov8n", prune=PruneSpec(criteria=["not-yet"], ratio=0.3, skip_unavailable=True)))


@pytest.mark.parametrize("key, flag", [("prune.ratio", "--ratio"), ("prune.criteria[1]", "--criterion"),
                                       ("img_size", "--img-size"), ("bench.runtimes[0]", "--runtime"),
                                       ("model", "--model"), ("finetune.epochs", "--epochs")])
def test_flag_for(key: str, flag: str) -> None:
    assert flag_for(key) == flag


def test_load_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
    bad.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(bad)


def test_an_option_goes_to_the_criteria_that_take_it() -> None:
    from detprune.pipeline.criteria import criterion_kwargs

    # one option set for several criteria: valid when some criterion takes each option
    validate(Recipe(model="yolov8n", data="synthetic:8", prune=PruneSpec(criteria=["attribution", "l1"], ratio=0.3,
                                                                         options={"tau": 0.05})))
    assert criterion_kwargs("attribution", None, 2, {"tau": 0.05})["tau"] == 0.05
    assert "tau" not in criterion_kwargs("l1", None, 2, {"tau": 0.05})
    with pytest.raises(RecipeError, match="none of"):
        validate(Recipe(model="yolov8n", data="synthetic:8", prune=PruneSpec(criteria=["attribution", "l1"],
                                                                             ratio=0.3, options={"taus": 0.05})))
