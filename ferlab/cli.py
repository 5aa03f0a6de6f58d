"""The ``ferlab`` command: one entry point, one sub-command per pipeline."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import sys
import typing
from collections import Counter
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path

# None of these imports PyTorch: the commands that need it import it themselves.
from . import __version__
from .atomic import atomic_write, atomic_write_text
from .classifier import BACKENDS, TRAIN_EXTRA
from .detect import ALIGN_MIN_TILT, DEFAULT_DETECTOR, DEFAULT_MARGIN
from .explain import PATCH, SCORES, STRIDE, UNITS
from .track import LABEL_MARGIN, SMOOTH_S
from .tta import TTA_MODES

DEFAULT_RUN = Path("runs")
# What `pip install "ferlab[train]"` adds to the inference-only install (pyproject.toml).
TRAINING_MODULES = {"torch", "safetensors", "sklearn", "optuna", "onnx"}
# A search trial is short: these replace TrainConfig's defaults in `ferlab search` (and its help).
SEARCH_DEFAULTS = {"epochs": 3, "max_train": 8000}
# ferlab.search.SEARCH_SPACE's names, repeated so that --help does not import torch and Optuna (tested to agree).
SEARCHED = ("lr", "beta1", "beta2", "batch_size", "weight_decay")
DATA_HELP = ("FER2013: Kaggle's fer2013.csv (or .csv.gz, .tar.gz), a *.packed.npz, or an image folder "
             "train|val|test/EMOTION/; or faces of your own in EMOTION/ folders (10%% each set aside to validate and test)")


def _parse_value(text: str):
    """``key=value`` option values: JSON where it parses (numbers, booleans), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _add_train_options(parser: argparse.ArgumentParser, defaults: dict | None = None,
                       searched: tuple[str, ...] = ()) -> None:
    """One flag per `TrainConfig` field, so the CLI and the dataclass cannot drift apart;
    ``defaults`` are the command's own, given to `_train_config` too; ``searched`` fields
    are drawn by the search unless their flag is given."""
    from .config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "model_options":
            continue
        kind = hints[f.name]
        convert = int if kind in (int, int | None) else float if kind is float else str
        default = (defaults or {}).get(f.name, f.default)
        # argparse's default stays None so that `_train_config` sees which flags were given;
        # the help names the default that then applies.
        if f.name in searched:
            default = "searched; giving the flag holds it fixed"
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=convert, default=None,
                            choices=f.metadata["choices"], help=f"{f.metadata['help']} (default: {default})")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of the model's config, e.g. batch_norm=false")


def _train_config(args: argparse.Namespace, **defaults):
    from .config import TrainConfig

    values = dict(defaults)
    for f in fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    options = {}
    if values.get("init") and getattr(args, "model", None) is None:
        # Fine-tuning without --model: the architecture and options the start was trained with.
        from .models import trained_card

        card = trained_card(values["init"])
        values["model"], options = card["model"], dict(card.get("model_options", {}))
    for item in args.model_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--model-option {item!r}: expected KEY=VALUE")
        options[key] = _parse_value(value)
    values["model_options"] = options
    return TrainConfig.from_dict(values)


def cmd_data_pack(args) -> None:
    from .data import load_fer2013, write_packed

    path = write_packed(load_fer2013(args.path), args.out)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")


def cmd_data_export(args) -> None:
    from .data import load_fer2013, write_image_folders

    counts = write_image_folders(load_fer2013(args.path), args.out)
    print(f"{args.out}: " + ", ".join(f"{split} {count:,}" for split, count in counts.items()) + " images")


def cmd_data_stats(args) -> None:
    from .data import EMOTIONS, dataset_stats, load_fer2013

    stats = dataset_stats(load_fer2013(args.path))
    if args.json:
        print(json.dumps(stats, indent=2))
        return
    print(f"{'split':<12}{'rows':>7}" + "".join(f"{e:>10}" for e in EMOTIONS))
    for split, counts in stats["counts"].items():
        print(f"{split:<12}{sum(counts.values()):>7}" + "".join(f"{counts[e]:>10}" for e in EMOTIONS))
    print(f"rows {stats['rows']}, distinct images {stats['distinct_images']}")
    print(f"duplicate groups {stats['duplicate_groups']} covering {stats['duplicate_rows']} rows; "
          f"{stats['duplicate_groups_across_splits']} span splits, "
          f"{stats['duplicate_groups_with_conflicting_labels']} have conflicting labels")
    print(f"constant images ({len(stats['constant_images'])}): {stats['constant_images']}")


def cmd_baselines(args) -> None:
    from .baselines import fit_baselines
    from .data import load_fer2013

    print(json.dumps(fit_baselines(load_fer2013(args.data)), indent=2))


def cmd_train(args) -> None:
    from .data import load_fer2013
    from .train import train

    config = _train_config(args)
    data = load_fer2013(args.data)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    _record_command(Path(args.out))
    result = train(config, data, args.out, resume=args.resume, max_minutes=args.max_minutes)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 reports
    if not result["finished"]:
        print(f"stopped after {len(result['history'])} of {config.epochs} epochs (--max-minutes); "
              "run the same command with --resume to go on")
        return
    from .evaluate import write_metrics

    metrics = write_metrics(args.out, data)
    print(f"best epoch {metrics['best_epoch']}: PublicTest {metrics['val']['accuracy']:.4f}  "
          f"PrivateTest {metrics['test']['accuracy']:.4f}  (weights in {args.out}/best.safetensors)")


def cmd_soup(args) -> None:
    from .data import load_fer2013
    from .soup import check_ingredients, make_soup

    check_ingredients(args.runs)  # a wrong run list fails at once, not after the data is parsed
    data = load_fer2013(args.data)
    out = make_soup(args.runs, data, args.out)
    _record_command(out)
    from .evaluate import write_metrics

    metrics = write_metrics(out, data)
    print(f"soup of {len(args.runs)}: PublicTest {metrics['val']['accuracy']:.4f}  "
          f"PrivateTest {metrics['test']['accuracy']:.4f}  (weights in {out}/best.safetensors)")


def _record_command(run_dir: Path) -> None:
    """The exact command, kept beside the run it made (`scripts/experiment_rows.py` reads it)."""
    atomic_write_text(run_dir / "command.txt", "ferlab " + " ".join(sys.argv[1:]) + "\n")


def cmd_search(args) -> None:
    from .data import load_fer2013
    from .search import run_search

    base = _train_config(args, **SEARCH_DEFAULTS)
    fixed = [name for name in SEARCHED if getattr(args, name) is not None]
    study = run_search(load_fer2013(args.data), base, args.out, args.trials, storage=args.storage,
                       study_name=args.study, sampler=args.sampler, seed=args.search_seed, fixed=fixed)
    print(json.dumps({"best_value": study.best_value, "best_params": study.best_trial.params,
                      "trials": len(study.trials)}, indent=2))


def cmd_evaluate(args) -> None:
    from .classifier import ensemble_members, evaluate_exported, onnx_form, resolve_model
    from .data import load_fer2013
    from .metrics import evaluate_ensemble

    models = [resolve_model(member) for name in args.models for member in ensemble_members(name)]
    engines = [_evaluation_engine(path, args.backend) for path in models]
    data = load_fer2013(args.data)
    if args.predictions:  # the scores below, face by face, at each model's card temperature
        from .metrics import PREDICTION_HEADER, ensemble_probabilities, prediction_rows

        members = [_ensemble_member(onnx_form(path) if engine == "onnx" else path, engine)
                   for path, engine in zip(models, engines, strict=True)]
        with atomic_write(args.predictions) as tmp, open(tmp, "w", newline="") as handle:
            table = csv.writer(handle)
            table.writerow(PREDICTION_HEADER)
            table.writerows(prediction_rows(lambda faces: ensemble_probabilities(members, faces, args.tta), data))
        print(f"ferlab: each PublicTest and PrivateTest face's probabilities: {args.predictions}", file=sys.stderr)
    if args.compare:
        from .classifier import load_model
        from .metrics import compare_on_fer2013

        backend = _load_backend(args.backend)
        model_a, model_b = (load_model(name, args.tta, backend) for name in ("+".join(args.models), args.compare))
        print(json.dumps({"a": "+".join(args.models), "b": args.compare, "tta": args.tta, "backend": backend,
                          **compare_on_fer2013(model_a.predict, model_b.predict, data)}, indent=2))
        return
    if len(models) == 1 and args.tta == "none":
        if engines[0] == "onnx":
            metrics = evaluate_exported(models[0], data)
        else:
            from .evaluate import evaluate_trained

            metrics = evaluate_trained(models[0], data)
        metrics.pop("test_predicted")
        print(json.dumps(metrics, indent=2))
        return
    # The files evaluated: a bundled model's ONNX twin where ONNX Runtime runs it.
    models = [onnx_form(path) if engine == "onnx" else path for path, engine in zip(models, engines, strict=True)]
    members = [_ensemble_member(path, engine) for path, engine in zip(models, engines, strict=True)]
    print(json.dumps({"models": [str(path) for path in models], "engines": engines, "tta": args.tta,
                      **evaluate_ensemble(members, data, args.tta)}, indent=2))


def _load_backend(backend: str) -> str:
    """`ferlab.load_model`'s backend for `ferlab evaluate`'s: as the rest of the command, PyTorch
    where it is installed (the engine the model cards were measured with)."""
    from .classifier import torch_installed

    return "torch" if backend == "auto" and torch_installed() else backend


def _ensemble_member(path: Path, engine: str):
    """A model as the ``logits_of(faces, tta)`` function of `ferlab.metrics`, on ``engine``, at
    its card's temperature (`ferlab.evaluate.trained_logits`)."""
    if engine == "onnx":
        from .classifier import onnx_logits

        return onnx_logits(path, at_card_temperature=True)
    from .evaluate import trained_logits

    return trained_logits(path)


def _evaluation_engine(path: Path, backend: str) -> str:
    """The engine, "torch" or "onnx", for one model of `ferlab evaluate`. "auto" takes PyTorch where it is
    installed, the engine the model cards' figures were measured with, except for ``.onnx``
    files; without PyTorch, a model's ONNX form (`ferlab.classifier.onnx_form`)."""
    from .classifier import is_onnx_file, onnx_form, torch_installed

    if is_onnx_file(path, backend):
        return "onnx"
    if backend == "torch" or (backend == "auto" and torch_installed()):
        return "torch"
    onnx_form(path)  # says what is missing now, before the data file is read
    return "onnx"


def cmd_report(args) -> None:
    from .data import load_fer2013

    run_json = Path(args.run_dir) / "run.json"
    if run_json.exists():  # a `ferlab reproduce` folder: the paper's whole report
        if args.explain:
            raise ValueError("--explain is for a trained run's report; for the paper's models run `ferlab explain --data "
                             "FILE --model RUN/models/paper_cnn`")
        from .report import build_report
        from .reproduce import ReproduceConfig

        run = json.loads(run_json.read_text())
        data_path = args.data or run["data"]
        del run["data"]
        paths = build_report(args.run_dir, ReproduceConfig(**run).select(load_fer2013(data_path)))
    else:  # a `ferlab train` (or `ferlab soup`) folder: that model's figures and tables
        from .report.run import build_run_report

        if not args.data:
            raise ValueError(f"{args.run_dir} is not a `ferlab reproduce` folder (no run.json): for a trained run, "
                             "give the FER2013 file it was trained on with --data")
        paths = build_run_report(args.run_dir, load_fer2013(args.data), explain=args.explain)
    print(f"wrote {paths['markdown']} and {paths['html']}")


def cmd_reproduce(args) -> None:
    from .reproduce import ReproduceConfig, reproduce

    config = ReproduceConfig.quick() if args.quick else ReproduceConfig()
    if args.epochs:
        config.epochs = args.epochs
    out = args.out or DEFAULT_RUN / ("reproduce-quick" if args.quick else "reproduce")
    reproduce(args.data, out, config)


def _analyzer_builder(args):
    """The analyzer the options ask for, as a picklable function that builds it (for workers)."""
    from functools import partial

    from .predict import SMALL_FACE_TTA, build_analyzer

    return partial(build_analyzer, args.model, tta=args.tta, backend=args.backend, detector=args.detector,
                   margin=args.margin, align_min_tilt=None if args.no_align else args.align_min_tilt,
                   cropped=getattr(args, "cropped", False), min_face=args.min_face,
                   auto_levels=not args.no_auto_levels,
                   small_face_tta=None if args.no_small_face_tta else SMALL_FACE_TTA)


def _analyzer(args):
    return _analyzer_builder(args)()


def _workers_analyzer(args):
    """For the commands with --workers: a builder for the worker processes, else the analyzer."""
    return _analyzer_builder(args) if args.workers > 1 else _analyzer(args)


def cmd_predict(args) -> int:
    from .predict import VIDEO_SUFFIXES, done_paths, expand_inputs, predict_files, read_results, write_results
    from .viewer import write_gallery

    fmt = args.format or ("csv" if args.out and str(args.out).endswith(".csv") else "jsonl")
    if args.resume and not args.out:
        raise ValueError("--resume goes on with the results file of --out: name it")
    done = done_paths(args.out, fmt) if args.resume else set()
    if done:
        print(f"ferlab: resuming {args.out}: {len(done)} images done before are skipped", file=sys.stderr)
    results = predict_files(args.inputs, _workers_analyzer(args), annotate_dir=args.annotate,
                            batch_images=args.batch_images, progress=not args.quiet, skip=done, workers=args.workers,
                            crops_dir=args.crops)
    shown = []  # for --html without --out: the results as they are printed
    labels: Counter[str] = Counter()  # of the faces found this run

    def kept(results):
        for result in results:
            labels.update(face["label"] for face in result.get("faces", []))
            if args.html and not args.out:
                shown.append(result)
            yield result

    try:
        count, failed = write_results(kept(results), args.out, fmt, append=args.resume)
    except KeyboardInterrupt:
        if args.out:
            print(f"ferlab: interrupted; what was analyzed is in {args.out}: add --resume to the same command to "
                  "go on from there", file=sys.stderr)
            return 130
        raise
    for failure in failed:
        print(f"ferlab: skipped {failure['error']}", file=sys.stderr)
    if args.out:
        found = sum(labels.values())
        faces = (f": {found} face{'s' * (found > 1)}, " + ", ".join(f"{n} {label}" for label, n in labels.most_common())
                 if labels else "")
        print(f"{count - len(failed)} of {count} images analyzed{faces}; results in {args.out}", file=sys.stderr)
    if args.html:  # the results file's photos, those of an earlier run included after --resume
        gallery = write_gallery(args.html, read_results(args.out, fmt) if args.out else shown)
        print(f"ferlab: the photos with their faces, to open in a web browser: {gallery}", file=sys.stderr)
    folders = [item for item in args.inputs if item != "-" and Path(item).is_dir()]
    if videos := list(expand_inputs(folders, VIDEO_SUFFIXES)):  # a phone's folder holds both
        print(f"ferlab: left out {len(videos)} video{'s' if len(videos) > 1 else ''} in {', '.join(folders)} "
              f"({videos[0].name}{', ...' if len(videos) > 1 else ''}): {shlex.join(['ferlab', 'video', *folders])} "
              "analyzes them", file=sys.stderr)
    return 1 if failed else 0


def cmd_video(args) -> int:
    from .video import SUMMARY_HEADER, VideoFrame, analyze_videos, read_faces, summary_rows, video_inputs
    from .viewer import write_index

    sources = video_inputs(args.videos)
    if not sources:
        raise ValueError(f"{' '.join(args.videos)}: no video found")
    if args.jsonl and len(sources) > 1:
        raise ValueError("--jsonl prints the frames of one video: name one")

    def print_frame(frame: VideoFrame) -> None:
        print(json.dumps({"frame": frame.index, "time_s": round(frame.time_s, 3), "faces": frame.faces}), flush=True)

    every, faces = args.every, None
    if args.faces_from:
        if len(sources) > 1:
            raise ValueError("--faces-from holds the faces of one video: name that one")
        faces, found_every = read_faces(args.faces_from, recording=sources[0])  # a live session's: its recording
        if found_every is not None and args.every not in (1, found_every):
            raise ValueError(f"{args.faces_from}: its faces were found with --every {found_every}, not {args.every}")
        every = found_every or args.every
        step = math.gcd(*faces)  # a timeline has no row for a frame without faces, so it does not say its every
        if found_every is None and every == 1 and step > 1 and len(faces) >= 3:
            raise ValueError(f"{args.faces_from}: every frame in it is a multiple of {step}: give the --every it was "
                             f"made with (--every {step}?)")
    if args.no_sound and not args.annotate_video:
        raise ValueError("--no-sound is for the annotated copy: add --annotate-video")
    options = dict(every=every, annotate=args.annotate_video or False, max_seconds=args.max_seconds,
                   smooth_s=args.smooth, label_margin=args.label_margin, html=args.html, faces=faces,
                   sound=not args.no_sound,
                   subtitles=(args.subtitles or ["srt"]) if args.subtitles is not None else [],
                   **({"on_frame": print_frame} if args.jsonl else {}))
    analyzer = None if faces is not None else _workers_analyzer(args)  # with --faces-from, no model is loaded
    results = analyze_videos(sources, analyzer, args.out, workers=args.workers, progress=not args.quiet,
                             resume=args.resume, **options)
    done, failed, resumed, stopped = 0, 0, 0, False
    finished = []  # for the overview page of several videos (--html)
    # The summary table grows as each video is done, so that Ctrl-C keeps the rows of those done.
    with open(args.summary, "w", newline="") if args.summary else nullcontext() as summary:
        table = csv.writer(summary) if summary else None
        if table:
            table.writerow(SUMMARY_HEADER)
        try:
            for result in results:
                done, failed, resumed = done + 1, failed + ("error" in result), resumed + bool(result.get("resumed"))
                finished.append(result)
                if table:
                    table.writerows(summary_rows(result))
                    summary.flush()
                if len(sources) == 1:  # as before: the whole summary, indented
                    print(json.dumps(result, indent=2), file=sys.stderr if args.jsonl else sys.stdout)
                else:  # one JSON line per video, as each is done
                    print(json.dumps(result), flush=True)
                if "error" in result:
                    print(f"ferlab: skipped {result['error']}", file=sys.stderr)
                if result.get("resumed") and len(sources) == 1:
                    print(f"ferlab: {result['video']} was analyzed to its end before (--resume): its summary",
                          file=sys.stderr)
                stopped = result.get("stopped") == "interrupted"
        except KeyboardInterrupt:
            if len(sources) == 1:  # before its first frame
                print("ferlab: stopped by Ctrl-C before the first frame was analyzed; nothing was written",
                      file=sys.stderr)
                return 130
            stopped = True
    if args.html and len(sources) > 1 and finished:
        index = write_index(Path(args.out) / "index.html", finished)
        print(f"ferlab: an overview of the videos with links to their players: {index}", file=sys.stderr)
    if stopped:
        frames = f" after {result['frames']} frames" if len(sources) == 1 else f" after {done} of {len(sources)} videos"
        again = "" if len(sources) == 1 else "; the same command with --resume goes on with the videos not done"
        print(f"ferlab: stopped by Ctrl-C{frames}; what was analyzed is written, in {args.out}{again}", file=sys.stderr)
        return 130
    if len(sources) > 1:
        before = f" ({resumed} of them before, skipped by --resume)" if resumed else ""
        print(f"{done - failed} of {len(sources)} videos analyzed{before}; results in {args.out}", file=sys.stderr)
    return 1 if failed else 0


def cmd_photo_accuracy(args) -> None:
    from .photo_accuracy import photo_accuracy

    result = photo_accuracy(args.folder, _workers_analyzer(args), progress=not args.quiet, workers=args.workers,
                            batch_images=args.batch_images, gallery=args.html)
    text = json.dumps(result, indent=2)
    if args.out:
        atomic_write_text(Path(args.out), text)
    print(text)
    if args.confusion and result["where_a_face_was_found"]:
        from .report.figures import confusion_matrix

        confusion_matrix(result["where_a_face_was_found"]["confusion_normalized"], Path(args.confusion))


def cmd_explain(args) -> int:
    """Photos: a figure per photo of where each face's label comes from. ``--data``: the
    maps of a whole labelled split, per expression, and how faithful they are."""
    from .explain import explain_photo, explain_split

    out = Path(args.out)
    if args.data:
        if args.inputs:
            raise ValueError("give photos or --data, not both")
        from .classifier import load_model
        from .data import load_fer2013, train_val_test

        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be 1 or more, not {args.limit}")
        faces, labels = train_val_test(load_fer2013(args.data))[args.split]
        faces, labels = faces[: args.limit], labels[: args.limit]
        if len(faces) == 0:
            raise ValueError(f"{args.data} has no {args.split} faces to explain")
        summary = explain_split(load_model(args.model, tta=args.tta, backend=args.backend), faces, labels, out,
                                args.patch, args.stride, args.units, progress=not args.quiet)
        print(json.dumps(summary["deletion"]))
        written = ", ".join(str(out / name) for name in ("saliency_by_class.png", "class_maps.npz", "deletion.png"))
        print(f"wrote {written} and {out / 'explain.json'}", file=sys.stderr)
        return 0
    if not args.inputs:
        raise ValueError("give photos (files, folders, globs) to explain, or --data FER2013 file for a whole split")
    from tqdm import tqdm

    from .imageio import ImageError
    from .predict import expand_inputs, output_names

    analyzer, failed = _analyzer(args), 0
    paths = list(expand_inputs(args.inputs))
    names = output_names(paths)
    for path in tqdm(paths, unit="img", disable=args.quiet or len(paths) == 1):
        figure = out / f"{names[path]}.explain.png"
        try:
            records = explain_photo(analyzer, path, figure, args.patch, args.stride, args.units)
        except (ImageError, OSError) as error:  # as ferlab predict: listed, and the others go on
            tqdm.write(f"ferlab: skipped {error}", file=sys.stderr)
            print(json.dumps({"path": str(path), "error": str(error)}), flush=True)
            failed += 1
            continue
        result = {"path": str(path), "faces": records}
        if records:
            result["explanation"] = str(figure)
        else:
            tqdm.write(f"ferlab: {path}: no face found, nothing to explain", file=sys.stderr)
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


def cmd_export(args) -> None:
    from .classifier import ensemble_members, load_model

    if len(ensemble_members(args.model)) > 1:
        raise ValueError(f"{args.model}: export one model at a time (an ONNX file each), then load them as "
                         "'a.onnx+b.onnx'")
    if args.int8 and not args.data:
        raise ValueError("--int8 needs --data FER2013_FILE: training faces set the int8 ranges, and the "
                         "exported model's accuracy is measured on PublicTest and PrivateTest")
    model = load_model(args.model, backend="torch")
    if not args.int8:
        path = model.export_onnx(args.onnx)
        print(f"wrote {path} and {path.with_suffix('.json')}")
        return
    import numpy as np

    from .data import load_fer2013, train_val_test

    splits = train_val_test(load_fer2013(args.data))
    training_faces = splits["Training"][0]
    count = min(args.calibration_faces, len(training_faces))
    chosen = np.random.default_rng(0).choice(len(training_faces), count, replace=False)
    path = model.export_onnx(args.onnx, calibration_faces=training_faces[chosen])
    exported = load_model(path)
    card = exported.card
    card["onnx"]["accuracy"] = {
        split: float((exported.predict(splits[split][0]) == splits[split][1]).mean())
        for split in ("PublicTest", "PrivateTest")
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(card, indent=2))
    measured = ", ".join(f"{split} {value:.2%}" for split, value in card["onnx"]["accuracy"].items())
    print(f"wrote {path} (int8, calibrated on {count} Training faces; accuracy {measured}) and "
          f"{path.with_suffix('.json')}")


ENGINES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}


def cmd_models(args) -> None:
    from .classifier import BUNDLED, bundled_models, bundled_path, card_beside, torch_installed

    # The cards of ferlab/pretrained: what `ferlab package-model` measured, not measured again here.
    cards = [card_beside(bundled_path(name)) | {"name": name} for name in bundled_models()]
    if args.json:
        print(json.dumps(cards, indent=2))
        return
    print("bundled models (ferlab.load_model(NAME), --model NAME); FER2013 accuracy and speed as their cards measured:")
    header = ["name", "architecture", "parameters", "PublicTest", "PrivateTest", "dedup.", "PrivateTest, shift TTA",
              "faces/s (2 threads; CPU below)", "file"]
    rows = [header]
    for card in cards:
        accuracy, tta = card["accuracy"], card.get("accuracy_with_tta", {}).get("shift", {})
        speed = ", ".join(f"{count:,} {ENGINES.get(engine, engine)}" for engine, count in card["faces_per_second"].items())
        file = bundled_path(card["name"])
        rows.append([card["name"], card["model"],
                     f"{card['trainable_parameters'] / 1e6:.2f} M", f"{accuracy['PublicTest']:.2%}",
                     f"{accuracy['PrivateTest']:.2%}", f"{accuracy['PrivateTest_without_training_duplicates']:.2%}",
                     f"{tta['PrivateTest']:.2%}" if tta else "", speed,
                     f"{file.name}, {file.stat().st_size / 1e6:.1f} MB"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for card in cards:
        print(f"{card['name']}: measured on {card['measured_on']}")
    print(f"without --model: {BUNDLED}; an ensemble: names joined by '+' (--model {'+'.join(bundled_models()[:2])}), "
          f"the mean of their probabilities; each model's card: NAME.md in {bundled_path().parent}")
    if torch_installed():
        from .models import list_models

        print(f"architectures to train (ferlab train --model NAME): {', '.join(list_models())}")


def cmd_demo(args) -> None:
    from importlib import resources

    from .imageio import load_image
    from .predict import write_annotated

    photo = Path(str(resources.files("ferlab") / "assets" / "astronaut.jpg"))
    analyzer = _analyzer(args)
    rgb = load_image(photo)
    faces = analyzer.analyze(rgb)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    annotated = write_annotated(rgb, faces, out / "astronaut.annotated.jpg")
    atomic_write_text(out / "astronaut.json", json.dumps({"path": str(photo), "faces": faces}, indent=2))
    print(json.dumps(faces, indent=2))
    print(f"annotated photo: {annotated}; JSON: {out / 'astronaut.json'}", file=sys.stderr)


def cmd_serve(args) -> None:
    from .serve import serve

    build = _analyzer_builder(args)  # here, and in the worker processes of a long video
    serve(args.host, args.port, build(), args.smooth, args.workers, build, args.cors_origin, args.label_margin)


def cmd_package_model(args) -> None:
    from .model_card import package_model

    card = package_model(args.run_dir, args.data, args.out, args.name, args.command, args.note, args.replace)
    print(f"wrote {card} and its weights and Markdown card")


PHOTO_WORKERS_HELP = "processes sharing the photos, one CPU and two batches (--batch-images) or more each"


def _add_label_margin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label-margin", type=float, default=LABEL_MARGIN, metavar="P",
                        help="keep each face's label until another expression's probability leads it by more than "
                             "P: steady labels where the model hesitates, a clear change at once; 0: each frame's "
                             "most probable (default: %(default)s, chosen by benchmarks/video_smoothing.py)")


def _add_workers_option(parser: argparse.ArgumentParser, purpose: str = PHOTO_WORKERS_HELP) -> None:
    from .parallel import usable_cpus

    # Each worker holds its own models, about 140 MB (benchmarks/predict_workers.py), hence the cap.
    parser.add_argument("--workers", type=int, default=min(usable_cpus(), 8),
                        help=f"{purpose} (default: one per CPU, at most 8: %(default)s here)")


def _add_cropped_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cropped", action="store_true",
                        help="the images are face crops already (as FER2013's): classify each whole, without "
                             "searching it for faces")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="bundled model name (default, fast, fast-int8; robust: blurred, noisy faces), "
                                         "run folder, .safetensors or .onnx; names joined by + (default+fast) run as "
                                         "one ensemble, the most accurate and slower (default: the bundled default "
                                         "model)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DEFAULT_MARGIN),
                        help="blazeface (default): CNN with landmarks, tiles big photos for small faces; "
                             "blazeface_short: faster, for faces filling much of the photo; hog, haar: classic")
    measured = ", ".join(f"{name} {margin}" for name, margin in DEFAULT_MARGIN.items())
    parser.add_argument("--margin", type=float,
                        help=f"crop margin per side, as a fraction of the face box (default: the detector's: {measured})")
    parser.add_argument("--align-min-tilt", type=float, default=ALIGN_MIN_TILT, metavar="DEGREES",
                        help="turn a face upright when its eyes tilt more than this (default: %(default)s)")
    parser.add_argument("--no-align", action="store_true", help="never turn faces upright")
    parser.add_argument("--no-auto-levels", action="store_true",
                        help="take each picture as it is: by default one too dark or flat (its grey levels spanning "
                             "under half the range) is stretched to full contrast before faces are searched and read")
    parser.add_argument("--min-face", type=int, default=0, metavar="PIXELS",
                        help="leave out faces smaller than this on a side, in the photo's own pixels: the small ones "
                             "are the least reliable (about 57%% right at 24 pixels, 68%% at 40: "
                             "benchmarks/small_faces.py); default: every face found")
    parser.add_argument("--tta", default="none", choices=TTA_MODES,
                        help="average each face with its mirror (flip) or also 2-pixel shifts (shift): "
                             "more accurate, 2 or 10 times the classifier's work (default: %(default)s; faces too "
                             "small for a 48-pixel crop get at least flip, 1 point more accurate there)")
    parser.add_argument("--no-small-face-tta", action="store_true",
                        help="classify faces too small for a 48-pixel crop as --tta says, not with at least flip")
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="auto (default): ONNX Runtime for a model with an ONNX form (every bundled model has one), "
                             "else PyTorch; torch: PyTorch, quicker on big batches of crops where the CPU has bf16")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferlab", description="Facial expression recognition on FER2013.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action="version", version=f"ferlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="inspect, pack or export a FER2013 file")
    data = data.add_subparsers(dest="data_command", required=True)
    stats = data.add_parser("stats", help="counts per split and class, duplicates, blank images")
    stats.add_argument("path", help=DATA_HELP)
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=cmd_data_stats)
    pack = data.add_parser("pack", help="a lossless copy about 60%% of the CSV.gz's size (for a GPU machine)")
    pack.add_argument("path", help=DATA_HELP)
    pack.add_argument("--out", required=True, help="output file, named *.packed.npz")
    pack.set_defaults(func=cmd_data_pack)
    export = data.add_parser("export", help="the images as PNG files in folders: OUT/<split>/<emotion>/*.png")
    export.add_argument("path", help=DATA_HELP)
    export.add_argument("--out", required=True, help="a new folder (Training/, PublicTest/, PrivateTest/ in it)")
    export.set_defaults(func=cmd_data_export)

    baselines = commands.add_parser("baselines", help="LDA, QDA and logistic regression (Table 1)")
    baselines.add_argument("--data", required=True, help=DATA_HELP)
    baselines.set_defaults(func=cmd_baselines)

    train = commands.add_parser("train", help="train one model; best PublicTest epoch is kept")
    train.add_argument("--data", required=True, help=DATA_HELP)
    train.add_argument("--out", required=True, help="run folder (checkpoints, history, weights)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--max-minutes", type=float, help="stop after the epoch that crosses this wall time")
    _add_train_options(train)
    train.set_defaults(func=cmd_train)

    soup = commands.add_parser("soup", help="average the weights of fine-tunes of one start (a model soup)")
    soup.add_argument("runs", nargs="+", help="run folders trained with the same --init weights")
    soup.add_argument("--data", required=True, help=DATA_HELP + " (training faces for batch-norm statistics)")
    soup.add_argument("--out", required=True, help="folder for the averaged weights, card and metrics")
    soup.set_defaults(func=cmd_soup)

    search = commands.add_parser("search", help="randomized hyper-parameter search (Optuna)")
    search.add_argument("--data", required=True, help=DATA_HELP)
    search.add_argument("--out", required=True, help="search folder (the study database, one run folder per trial)")
    search.add_argument("--trials", type=int, default=10, help="trials this worker runs (default: %(default)s)")
    search.add_argument("--storage", help="Optuna storage URL shared by workers (default: OUT/search.db)")
    search.add_argument("--study", default="ferlab",
                        help="workers with the same --storage and --study share one search (default: %(default)s)")
    search.add_argument("--sampler", default="random", choices=["random", "tpe"],
                        help="random: the paper's randomized search (default); tpe: Optuna's Bayesian sampler")
    search.add_argument("--search-seed", type=int, default=None, help="sampler seed (give workers different ones)")
    _add_train_options(search, SEARCH_DEFAULTS, SEARCHED)
    search.set_defaults(func=cmd_search)

    evaluate = commands.add_parser("evaluate", help="metrics of a trained model, or of an ensemble of several")
    evaluate.add_argument("models", nargs="+", metavar="MODEL",
                          help="a run folder, a .safetensors with its card, an exported .onnx, or a bundled model's name; "
                               "several (or names joined by +, as in default+fast) are evaluated as one ensemble")
    evaluate.add_argument("--tta", default="none", choices=TTA_MODES,
                          help="test-time augmentation: the mirror image (flip), or mirror and 2-pixel shifts (shift) "
                               "(default: %(default)s)")
    evaluate.add_argument("--data", required=True, help=DATA_HELP)
    evaluate.add_argument("--backend", default="auto", choices=BACKENDS,
                          help="torch: PyTorch, as the model cards were measured; onnx: ONNX Runtime on the model's "
                               "ONNX form (an .onnx file, or the twin beside a .safetensors); auto: PyTorch where it "
                               "is installed except for .onnx files, else ONNX Runtime (default: %(default)s)")
    evaluate.add_argument("--compare", metavar="OTHER",
                          help="instead: is MODEL more accurate than OTHER (a model as MODEL; names joined by + for "
                               "an ensemble), or is the gap chance? Both label the same faces; McNemar's exact test "
                               "on those only one gets right, per split (choose on PublicTest)")
    evaluate.add_argument("--predictions", metavar="CSV",
                          help="also write each PublicTest and PrivateTest face's row in the data file, true and "
                               "predicted label (as scored), whether it is also in Training, and its seven "
                               "probabilities (at the model card's temperature), for analyses of one's own")
    evaluate.set_defaults(func=cmd_evaluate)

    report = commands.add_parser("report", help="report.md/html and figures for a reproduce run or a trained model")
    report.add_argument("run_dir", help="a `ferlab reproduce` run folder (the paper's report), or a `ferlab train` "
                                        "run folder (that model's accuracy, curves, confusion matrix, examples)")
    report.add_argument("--data", help="FER2013 file (default for a reproduce run: the one it used; needed for a "
                                       "trained run)")
    report.add_argument("--explain", action="store_true",
                        help="trained run: also occlusion maps of every PrivateTest face, per expression, and how "
                             "faithful they are (ferlab explain; minutes)")
    report.set_defaults(func=cmd_report)

    reproduce = commands.add_parser("reproduce", help="the whole paper end to end (resumable)")
    reproduce.add_argument("--data", required=True, help=DATA_HELP)
    reproduce.add_argument("--out", help="run folder (default runs/reproduce[-quick])")
    reproduce.add_argument("--quick", action="store_true", help="4,000 training faces, 1,000 per test split, 2 epochs")
    reproduce.add_argument("--epochs", type=int, help="epochs per CNN (default 30)")
    reproduce.set_defaults(func=cmd_reproduce)

    predict = commands.add_parser("predict", help="emotion of every face in photos (files, folders, globs)")
    predict.add_argument("inputs", nargs="+", metavar="PATH",
                         help="image files, folders (searched recursively), globs; - reads them from standard input, "
                              "one a line")
    predict.add_argument("--out", help="output file (.jsonl or .csv); default: JSON lines on stdout")
    predict.add_argument("--format", choices=["jsonl", "csv"], help="default: csv when --out ends in .csv, else JSON lines")
    predict.add_argument("--annotate", metavar="DIR", help="also write each photo with boxes, labels and bars")
    predict.add_argument("--crops", metavar="DIR",
                         help="also write each face as the model saw it (48x48 grey, upright), in one sub-folder per "
                              "label given: DIR/happy/NAME.face0.png; check or move them, then measure the model on "
                              "them with ferlab photo-accuracy DIR --cropped")
    predict.add_argument("--html", metavar="FILE",
                         help="also FILE (such as photos.html): a page to open in a web browser, offline, with each "
                              "photo (linked from where it lies; HEIC and TIFF, which browsers do not show, by JPEG "
                              "previews in photos.previews/) and its faces boxed and labelled, filtered by label; "
                              "the photos of --out after --resume too")
    predict.add_argument("--batch-images", type=int, default=32,
                         help="photos whose faces are classified together (default: %(default)s)")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_cropped_option(predict)
    _add_workers_option(predict)
    predict.add_argument("--resume", action="store_true",
                         help="go on with the results file of --out: skip the images it has, append the others "
                              "(after a run that was stopped)")
    _add_model_options(predict)
    predict.set_defaults(func=cmd_predict)

    accuracy = commands.add_parser("photo-accuracy",
                                   help="accuracy on labelled photos of your own (one sub-folder per expression)")
    accuracy.add_argument("folder", help="a folder with sub-folders named after expressions (angry/, happy/, ...), "
                                         "one person's photo per file, in any size and format predict reads")
    accuracy.add_argument("--out", help="also write the JSON here")
    accuracy.add_argument("--confusion", metavar="PNG", help="also draw the normalized confusion matrix here")
    accuracy.add_argument("--html", metavar="FILE",
                          help="also FILE: a page to open in a web browser, offline, with each photo, its faces and "
                               "the label expected; the wrong ones a click away")
    accuracy.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_cropped_option(accuracy)
    _add_workers_option(accuracy)
    accuracy.add_argument("--batch-images", type=int, default=32, help="photos classified together (default: %(default)s)")
    _add_model_options(accuracy)
    accuracy.set_defaults(func=cmd_photo_accuracy)

    video = commands.add_parser("video", help="emotions over time in videos, a camera or a stream: timeline CSV and plot")
    video.add_argument("videos", nargs="+", metavar="VIDEO",
                       help="video files OpenCV can read (MP4, AVI, MOV, ...), folders (searched recursively) or "
                            "globs; or one camera index (0: the first webcam; stop with Ctrl-C or --max-seconds) or "
                            "stream URL (rtsp://, http://)")
    video.add_argument("--max-seconds", type=float, help="stop after this many seconds of video (default: read to its end)")
    video.add_argument("--quiet", action="store_true", help="no progress bar")
    video.add_argument("--jsonl", action="store_true",
                       help="print each analyzed frame's faces as a JSON line as it comes (the summary goes to stderr)")
    video.add_argument("--out", default="ferlab-video", help="output folder (default: %(default)s)")
    video.add_argument("--summary", metavar="CSV",
                       help="also a table of every video's face tracks: one row per track (video, first and last "
                            "second, frames, label, mean probabilities, each label's share of its frames), one per "
                            "video that could not be read")
    video.add_argument("--every", type=int, default=1, help="analyze every k-th frame (default: %(default)s, every frame)")
    video.add_argument("--annotate-video", nargs="?", const=True, choices=["mp4", "webm", "h264"],
                       help="also write an annotated copy: h264 (an MP4 that plays everywhere, web browsers "
                            "included; needs pip install \"ferlab[h264]\"), mp4 (MPEG-4 Part 2: VLC, QuickTime, "
                            "Windows; five times the size) or webm (VP8: plays in web browsers; slower to write); "
                            "default: h264 where it is installed, else mp4. It has the video's sound where PyAV "
                            "is installed (the h264 extra)")
    video.add_argument("--no-sound", action="store_true",
                       help="the annotated copy without the video's sound")
    video.add_argument("--subtitles", nargs="*", choices=["srt", "vtt", "csv"], metavar="srt|vtt|csv",
                       help="also NAME.emotions.srt (and/or .vtt, .csv): each face track's label over time as "
                            "subtitles, which video players show over the video as it is (VLC and mpv load a .srt "
                            "named after the video; WebVTT places each label over its face, for web pages), or as a "
                            "table of segments (csv: track, label, start_s, end_s, confidence; for spreadsheets and "
                            "annotation tools such as ELAN); default: srt")
    video.add_argument("--html", action="store_true",
                       help="also NAME.html: a page to open in a web browser, offline, that plays the video with "
                            "each face boxed and a strip per face track (the video stays where it is; with "
                            "--annotate-video h264 or webm, a browser that cannot play the video plays that "
                            "copy); for several videos, also index.html, an overview with links to each")
    video.add_argument("--resume", action="store_true",
                       help="skip the videos analyzed to their end before into --out with this --every, "
                            "--smooth and --label-margin and the outputs asked for (their NAME.summary.json says "
                            "so), after a run that was stopped or crashed; a video stopped part way is analyzed "
                            "again from its start")
    video.add_argument("--faces-from", metavar="FILE",
                       help="write and draw the faces an earlier analysis found instead of analyzing again: its "
                            "timeline CSV (give the --every it was made with) or the JSON the web service answered "
                            "(the web page's Save JSON; it alone has the landmarks); with --annotate-video or --html, "
                            "a copy or viewer of a long analysis in a fraction of its time")
    video.add_argument("--smooth", type=float, default=SMOOTH_S, metavar="SECONDS",
                       help="smooth each face's probabilities over this time constant: longer gives steadier "
                            "labels that follow a change later; 0: each frame's own (default: %(default)s, "
                            "chosen by benchmarks/video_smoothing.py)")
    _add_label_margin_option(video)
    _add_workers_option(video, "processes sharing the videos, one CPU each: several videos are shared whole; one "
                               "long file is cut into segments of at most 600 analyzed frames, its tracks joined "
                               "across the cuts; a camera, a stream or a file under 300 analyzed frames is read by one")
    _add_model_options(video)
    video.set_defaults(func=cmd_video)

    explain = commands.add_parser("explain", help="where in each face its label comes from (occlusion maps)")
    explain.add_argument("inputs", nargs="*", metavar="PATH", help="image files, folders (searched recursively), globs")
    explain.add_argument("--out", default="ferlab-explain", help="output folder (default: %(default)s)")
    explain.add_argument("--data", help=DATA_HELP + "; instead of photos: the maps of a whole split, per expression, "
                                                     "and how faithful they are")
    explain.add_argument("--split", default="PrivateTest", choices=["Training", "PublicTest", "PrivateTest"],
                         help="with --data (default: %(default)s)")
    explain.add_argument("--limit", type=int, metavar="N", help="with --data: the split's first N faces only")
    explain.add_argument("--patch", type=int, default=PATCH,
                         help="side of the square hidden, in pixels of the 48x48 face (default: %(default)s, the most "
                              "faithful on PublicTest by benchmarks/explain_patch.py)")
    explain.add_argument("--stride", type=int, default=STRIDE, help="pixels between patches (default: %(default)s)")
    explain.add_argument("--units", default=UNITS, choices=list(SCORES),
                         help="what a map shows lost when a patch is hidden: the class's log-odds, which still tell "
                              "parts apart in faces the model is sure of, or its probability (default: %(default)s)")
    explain.add_argument("--quiet", action="store_true", help="no progress bar (photos: shown for two or more)")
    _add_cropped_option(explain)
    _add_model_options(explain)
    explain.set_defaults(func=cmd_explain)

    export = commands.add_parser("export", help="export a model for ONNX Runtime")
    export.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file (card written beside it)")
    export.add_argument("--model", help="bundled model name, run folder or .safetensors (default: the bundled default)")
    export.add_argument("--int8", action="store_true",
                        help="quantize weights and activations to int8 (a quarter of the size; needs --data)")
    export.add_argument("--data", help="FER2013 file: Training faces calibrate --int8, both test splits measure it")
    export.add_argument("--calibration-faces", type=int, default=1024, metavar="N",
                        help="Training faces that set the int8 ranges (default 1024)")
    export.set_defaults(func=cmd_export)

    models = commands.add_parser("models", help="the bundled models with their measured accuracy and speed, and the "
                                                 "architectures to train")
    models.add_argument("--json", action="store_true", help="each bundled model's whole card, as JSON")
    models.set_defaults(func=cmd_models)

    demo = commands.add_parser("demo", help="the bundled model on a bundled photo (NASA astronaut portrait)")
    demo.add_argument("--out", default="ferlab-demo", help="output folder (default: %(default)s)")
    _add_model_options(demo)
    demo.set_defaults(func=cmd_demo)

    serve = commands.add_parser("serve", help="web page and REST API (FastAPI on uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument("--smooth", type=float, default=SMOOTH_S, metavar="SECONDS",
                       help="in live streams (the page's webcam mode) and uploaded videos, smooth each face's "
                            "probabilities over this time constant; 0: each frame's own (default: %(default)s, as "
                            "ferlab video)")
    _add_label_margin_option(serve)
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="let web pages from ORIGIN (such as http://localhost:3000; * for any) call the API from "
                            "the browser (CORS); once per origin (default: only the server's own page)")
    _add_workers_option(serve, "processes sharing a long uploaded video, one CPU each, in segments as ferlab video "
                               "cuts them; photos and live streams are analysed in the server's own process")
    _add_model_options(serve)
    serve.set_defaults(func=cmd_serve)

    package = commands.add_parser("package-model", help="ship a trained run: weights + measured model card")
    package.add_argument("run_dir", help="a `ferlab train` run folder")
    package.add_argument("--data", required=True, help=DATA_HELP)
    package.add_argument("--out", default="ferlab/pretrained", help="where the weights and cards go (default: %(default)s)")
    package.add_argument("--name", default="default", help="the name load_model() will take (default: %(default)s)")
    package.add_argument("--command", required=True, help="the exact command that trained the run")
    package.add_argument("--note", default="",
                         help="a sentence for the card, e.g. how it compares with a goal (default: none)")
    package.add_argument("--replace", action="store_true",
                         help="replace a model of that name in --out (without it, an existing one is refused: "
                              "from the repository, the defaults would replace the bundled default model)")
    package.set_defaults(func=cmd_package_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("ferlab: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output has gone (| head): not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at the exit's flush
        return 141  # as a shell gives a command ended by SIGPIPE
    except ModuleNotFoundError as error:
        if args.debug or error.name not in TRAINING_MODULES:
            raise
        print(f"ferlab: error: this command needs {error.name}, one of the training tools: "
              f"{TRAIN_EXTRA}", file=sys.stderr)
        return 2
    except Exception as error:  # one line for users; --debug shows the traceback
        if args.debug:
            raise
        known = isinstance(error, ValueError | OSError | KeyError | ImportError)
        print(f"ferlab: error: {error if known else f'{type(error).__name__}: {error}'}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
