"""Where MLflow runs go: MLFLOW_TRACKING_URI if set, else the project's own mlflow.db, even when DVC runs a stage
in an experiment's temporary copy of the project (DVC then names the project in DVC_ROOT)."""

from rollgen.tracking import runs as tracking


def test_the_store_is_mlflow_tracking_uri_else_the_dvc_projects_own(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking.tracking_uri() == "sqlite:///mlflow.db"  # outside DVC: the current directory

    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"


def test_a_stage_in_a_temporary_copy_creates_the_experiment_in_the_project(monkeypatch, tmp_path):
    import mlflow

    project, copy = tmp_path / "project", tmp_path / "project/.dvc/tmp/exps/tmp1234"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "rollgen")

    experiment_id = tracking.start_experiment()
    assert (project / "mlflow.db").exists() and not (copy / "mlflow.db").exists()
    assert mlflow.get_experiment(experiment_id).artifact_location == (project / "mlartifacts").as_uri()


def test_scores_for_a_training_run_this_store_never_saw_go_to_a_new_run_tagged_with_it(monkeypatch, tmp_path):
    """A model that came with `dvc pull` names a run in someone else's store: evaluate and generate log anyway."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "rollgen")
    experiment_id = tracking.start_experiment()
    with mlflow.start_run() as known:
        pass

    tracking.log_to_run(known.info.run_id, {"model": {"nll": 1.5}}, prefix="test")
    tracking.log_to_run("5862bfd4978e43999e16989e253b413c", {"model": {"nll": 2.5}}, prefix="test")

    assert mlflow.get_run(known.info.run_id).data.metrics == {"test.model.nll": 1.5}
    tagged = "tags.`rollgen.training_run_id` = '5862bfd4978e43999e16989e253b413c'"
    runs = mlflow.search_runs([experiment_id], filter_string=tagged)
    assert len(runs) == 1 and runs["metrics.test.model.nll"].iloc[0] == 2.5
