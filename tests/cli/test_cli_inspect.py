from typer.testing import CliRunner

from detprune.cli import app

runner = CliRunner()


def test_inspect_builtin() -> None:
    result = runner.invoke(app, ["inspect", "--model", "yolov3-tiny", "--size", "128", "--num-classes", "3"])
    assert result.exit_code == 0, result.output
    assert "Coupling groups" in result.output and "model output" in result.output
    assert "13 groups, 10 prunable" in result.output


def test_inspect_unknown_model_exits_2() -> None:
    result = runner.invoke(app, ["inspect", "--model", "nope"])
    assert result.exit_code == 2
    assert "--model nope" in result.output and "Traceback" not in result.output
