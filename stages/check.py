"""Stage check, the first of every `dvc repro`: params.yaml as a whole, ingest.source, and what killed writes
left behind -> data/interim/checked.json, data/interim/source.json.

DVC deletes a stage's outputs before it runs the stage, so a mistake that the stage's own start would catch
(`train.epochs: ten`, a misspelled section or source folder) would cost the model or the ingested files. Every
stage depends on checked.json, whose content never changes: a mistake stops `dvc repro` here, before anything
is deleted, and a sound change reruns nothing by itself. DVC runs this stage every time (always_changed): the
inputs of ingest.source may lie outside the project, where DVC hashes nothing, so this stage hashes them into
source.json, ingest's dependency, and editing them reruns ingest.
"""

from rollgen import files, paths, pipeline
from rollgen.data import ingest
from rollgen.errors import RollgenError, report_errors
from rollgen.params import load_params
from rollgen.training.pretrained import pretrained_file


def main() -> None:
    params = load_params()
    stages = pipeline.read_stages()
    pipeline.check_params_written(stages)  # after load_params: the file is a mapping of sections
    source = params.ingest.source
    inputs = ingest.list_sources(source)
    if not inputs:
        raise RollgenError(f"ingest.source '{source}' holds no files to ingest (hidden files do not count)")
    pretrained_file(params.train.init_from)  # there, before DVC deletes the model it would retrain

    outputs = [output for stage in stages.values() for output in stage.outputs]
    removed = files.remove_leftovers(sorted({output.parent for output in outputs}))
    removed += files.remove_leftovers([output for output in outputs if output.is_dir()], recursive=True)
    for path in removed:
        print(f"removed {path}, left by a killed write")

    fingerprint = files.sha256_listing((item.path, item.file) for item in inputs)
    files.write_json(paths.SOURCE_FINGERPRINT, {"source": source, "files": len(inputs), "sha256": fingerprint})
    files.write_json(paths.CHECKED, {"checked": ["params.yaml", "ingest.source"]})


if __name__ == "__main__":
    report_errors(main, "check")
