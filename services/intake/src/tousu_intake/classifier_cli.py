"""``python -m tousu_intake.classifier_cli train|report|bench|retrain``.

- train:   fit the text model on the training split and write the shipped artefact;
- report:  accuracy per dimension and language, confusion matrix and calibration on the test
           split (its clean batches 10+, the fresh 15–20 and new 21+ among them, its old
           batches 01–09 whose industries training now covers, and all of it), and 5-fold
           cross-validation on the training split (``make classifier-report``);
- dev:     accuracy and the risk-flag misses on the dev split (evaluation/dev/, for tuning the
           flag rules; never the test split);
- bench:   CPU time per classification with the shipped model and rules (``make bench``);
- retrain: train a candidate from the corpus and the corrections in the database, promote it
           only if it is not worse (needs the database; same settings as the service).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import resources
from pathlib import Path

from tousu_intake.domain.classification import Classifier
from tousu_intake.domain.classification.corpus import load_split
from tousu_intake.domain.classification.evaluate import (
    ALL_TEST,
    CLEAN_TEST,
    FRESH_TEST,
    NEW_TEST,
    NEWEST_TEST,
    OLD_TEST,
    TEST_GROUP_TITLES,
    cross_validate,
    format_accuracy,
    format_confusion,
    format_cross_validation,
    format_review,
    grouped_test_split,
    measure_latency,
    score,
)
from tousu_intake.domain.classification.textmodel import (
    SHIPPED_MODEL_RESOURCE,
    TextModel,
    load_shipped_model,
)
from tousu_intake.domain.classification.training import corpus_fingerprint, train


def _shipped_path() -> Path:
    return Path(str(resources.files("tousu_intake.domain.classification"))) / SHIPPED_MODEL_RESOURCE


def _model(path: str | None) -> TextModel | None:
    return TextModel.from_bytes(Path(path).read_bytes()) if path else load_shipped_model()


def cmd_train(args: argparse.Namespace) -> int:
    """Train on the training split and write the artefact (the shipped one by default)."""
    items = load_split("train")
    examples = [item.example() for item in items]
    version = f"shipped-{corpus_fingerprint(examples)[:8]}"
    model = train(examples, version)
    out = Path(args.out) if args.out else _shipped_path()
    data = model.to_bytes()
    out.write_bytes(data)
    print(
        f"trained {version} on {len(examples)} complaints: {len(model.vocabulary)} features,"
        f" heads {', '.join(model.heads)}; wrote {out} ({len(data) / 1024:.0f} KiB)"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The classifier report of issue 11."""
    model = _model(args.model)
    if model is None:
        print("no trained model: run `python -m tousu_intake.classifier_cli train` first")
        return 1
    train_items = load_split("train")
    test_items = load_split("test")
    with_model = Classifier(model=model)
    print(
        f"model {model.version} (trained on {model.info.get('trained_on_size')} complaints),"
        f" rules {with_model.ruleset_version}"
    )
    groups = grouped_test_split(test_items)
    print(
        f"test split: {len(test_items)} complaints, written separately (evaluation/README.md):"
        f" {len(groups[CLEAN_TEST])} in {TEST_GROUP_TITLES[CLEAN_TEST]}"
        f" ({len(groups[FRESH_TEST])} of them in {TEST_GROUP_TITLES[FRESH_TEST]},"
        f" {len(groups[NEW_TEST])} in {TEST_GROUP_TITLES[NEW_TEST]},"
        f" {len(groups[NEWEST_TEST])} in {TEST_GROUP_TITLES[NEWEST_TEST]}),"
        f" {len(groups[OLD_TEST])} in {TEST_GROUP_TITLES[OLD_TEST]}"
    )
    print()
    scored = {name: score(items, with_model) for name, items in groups.items()}
    rules_only = {name: score(items, Classifier(model=None)) for name, items in groups.items()}
    print("accuracy on the test split, model + rules: clean / fresh / new / newest / old / all")
    print(format_accuracy(scored, languages=("all",)))
    print(format_accuracy({f"rules {name}": r for name, r in rules_only.items()}, ("all",)))
    for name, scores in scored.items():
        print()
        print(f"{TEST_GROUP_TITLES[name]} ({name}), model + rules, by language")
        print(format_accuracy({name: scores}))
        print(f"category confusion matrix, {name} (rows true, columns predicted)")
        print(format_confusion(scores))
        eces = ", ".join(
            f"{d} {value:.3f}" for d in ("category", "emotion") if (value := scores.ece(d))
        )
        print(f"expected calibration error, {name} (10 bins): {eces}")
        print(format_review(scores))
    if args.errors:
        print()
        print("test misses: id  dimension  true → predicted")
        for miss_id, dimension, truth, guess in scored[ALL_TEST].misses:
            print(f"  {miss_id:<22} {dimension:<11} {truth} → {guess}")
    if args.folds:
        print()
        print(f"{args.folds}-fold cross-validation on the training split ({len(train_items)})")
        print(format_cross_validation(cross_validate(train_items, k=args.folds)))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Accuracy on the dev split, model + rules and rules alone, and its risk-flag misses."""
    model = _model(args.model)
    items = load_split("dev")
    texts = {item.id: item.facts.description for item in items}
    with_model = Classifier(model=model)
    print(
        f"dev split: {len(items)} complaints, model {with_model.model_version},"
        f" rules {with_model.ruleset_version}"
    )
    scored = {"dev": score(items, with_model), "rules dev": score(items, Classifier(model=None))}
    print(format_accuracy(scored))
    print()
    print("dev risk-flag misses (model + rules): id  true → predicted  text")
    for miss_id, dimension, truth, guess in scored["dev"].misses:
        if dimension == "risk_flags":
            print(f"  {miss_id:<20} {truth or '-'} → {guess or '-'}  {texts[miss_id]}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """CPU time per classify() with the shipped model, over the whole corpus."""
    classifier = Classifier(model=_model(args.model))
    items = load_split("train") + load_split("test")
    latency = measure_latency(items, classifier, rounds=args.rounds)
    print(
        f"classify CPU time per complaint ({len(items)} complaints, mean"
        f" {latency['mean_chars']:.0f} chars, model {classifier.model_version}):"
        f" best round {latency['best_ms']:.3f} ms, median round {latency['median_ms']:.3f} ms"
    )
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    """Retrain from the corrections in the database."""
    return asyncio.run(_retrain(args))


async def _retrain(args: argparse.Namespace) -> int:
    from tousu_shared.clock import utc_now
    from tousu_shared.runtime import Runtime

    from tousu_intake.adapters.model_store import SessionModelRegistry, load_promoted_model
    from tousu_intake.adapters.training_data import SqlCorrections
    from tousu_intake.service_layer.retraining import ReadCorrections, RetrainCommand, retrain
    from tousu_intake.settings import IntakeSettings

    runtime = Runtime.build(IntakeSettings())
    try:
        async with runtime.session_factory() as session:
            corrections = await SqlCorrections(session).corrections()
            current = await load_promoted_model(session) or load_shipped_model()
        outcome = await retrain(
            RetrainCommand(actor=args.actor, tolerance=args.tolerance),
            registry=SessionModelRegistry(runtime.session_factory),
            corrections=ReadCorrections(corrections),
            corpus=load_split("train"),
            test=load_split("test"),
            current=current,
            rules=Classifier(model=None).rules,
            clock=utc_now,
        )
    finally:
        await runtime.close()
    print(f"{outcome.version}: {outcome.status} ({outcome.reason})")
    for side in ("candidate", "current"):
        measures = outcome.metrics[side]
        print(
            f"  {side:<9} "
            + ", ".join(f"{k} {'—' if v is None else f'{v:.3f}'}" for k, v in measures.items())
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m tousu_intake.classifier_cli")
    commands = parser.add_subparsers(dest="command", required=True)
    p_train = commands.add_parser("train", help="train the shipped model from the corpus")
    p_train.add_argument("--out", help="write the artefact here instead of the package")
    p_train.set_defaults(run=cmd_train)
    p_report = commands.add_parser("report", help="accuracy, confusion, calibration, CV")
    p_report.add_argument("--model", help="artefact file instead of the shipped model")
    p_report.add_argument("--folds", type=int, default=5, help="cross-validation folds (0: none)")
    p_report.add_argument("--errors", action="store_true", help="list the test split's misses")
    p_report.set_defaults(run=cmd_report)
    p_dev = commands.add_parser("dev", help="accuracy and flag misses on the dev split")
    p_dev.add_argument("--model", help="artefact file instead of the shipped model")
    p_dev.set_defaults(run=cmd_dev)
    p_bench = commands.add_parser("bench", help="CPU time per classification")
    p_bench.add_argument("--model", help="artefact file instead of the shipped model")
    p_bench.add_argument("--rounds", type=int, default=5)
    p_bench.set_defaults(run=cmd_bench)
    p_retrain = commands.add_parser("retrain", help="retrain from corrections in the database")
    p_retrain.add_argument("--actor", default="classifier_cli")
    p_retrain.add_argument("--tolerance", type=float, default=0.0)
    p_retrain.set_defaults(run=cmd_retrain)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
