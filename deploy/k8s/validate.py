"""Check deploy/k8s against the Kubernetes JSON schemas of one pinned version (``make lint``).

Usage: python deploy/k8s/validate.py [ROOT]   (default: the directory of this file)

Strict: a field the schema does not know (a misspelling) is an error, and so is a kind or
apiVersion without a schema (kubernetes-validate's own command line only warns about that
and exits 0). The resources checked are those each kustomization.yaml under ROOT lists,
followed into the directories it names, i.e. what ``kubectl apply -k`` sends before
kustomize sets the namespace and the image. A YAML file no kustomization reaches is an error
too: it would be neither applied nor checked. Custom resources whose schema belongs to their
operator (CUSTOM_RESOURCES) are skipped explicitly, and reported as skipped.
No cluster is contacted: the schemas ship with the kubernetes-validate package.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, validate

KUBERNETES_VERSION = "1.33.0"
# (apiVersion, kind) -> why it is not validated here.
CUSTOM_RESOURCES = {
    ("acid.zalan.do/v1", "postgresql"): "Zalando postgres-operator CRD: its schema is not bundled",
}


def _kustomization_files(directory: Path, reached: set[Path]) -> list[Path]:
    """The resource files a kustomization directory sends, following nested directories."""
    kustomization = directory / "kustomization.yaml"
    if not kustomization.is_file():
        raise SystemExit(f"{directory}: no kustomization.yaml")
    reached.add(kustomization.resolve())
    spec = yaml.safe_load(kustomization.read_text()) or {}
    files: list[Path] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            files.extend(_kustomization_files(path, reached))
        elif path.is_file():
            files.append(path)
            reached.add(path)
        else:
            raise SystemExit(f"{kustomization}: resource {entry} does not exist")
    # Patches are partial resources: they must exist, and kustomize checks their targets.
    for patch in spec.get("patches", []):
        path = (directory / patch["path"]).resolve()
        if not path.is_file():
            raise SystemExit(f"{kustomization}: patch {patch['path']} does not exist")
        reached.add(path)
    return files


def _check(resource: dict[str, Any], where: str) -> tuple[str, str | None]:
    """('ok' | 'skipped' | 'error', detail)."""
    api_version, kind = resource.get("apiVersion"), resource.get("kind")
    name = f"{kind}/{resource.get('metadata', {}).get('name')}"
    if (api_version, kind) in CUSTOM_RESOURCES:
        return "skipped", f"{where}: {name}: {CUSTOM_RESOURCES[(api_version, kind)]}"
    try:
        validate(resource, KUBERNETES_VERSION, strict=True)
    except ValidationError as error:
        path = ".".join(str(item) for item in error.path) or "(top)"
        return "error", f"{where}: {name}: {path}: {error.message}"
    except SchemaNotFoundError as error:
        return "error", f"{where}: {name}: {error.message}"
    return "ok", None


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else Path(__file__).parent).resolve()
    reached: set[Path] = set()
    files: list[Path] = []
    for kustomization in sorted(root.rglob("kustomization.yaml")):
        files.extend(_kustomization_files(kustomization.parent, reached))
    problems: list[str] = []
    unlisted = {p.resolve() for p in root.rglob("*.yaml")} - reached
    problems += [f"{path}: listed in no kustomization.yaml" for path in sorted(unlisted)]
    counts = {"ok": 0, "skipped": 0, "error": 0}
    for path in sorted(set(files)):
        for resource in yaml.safe_load_all(path.read_text()):
            if not resource:
                continue
            outcome, detail = _check(resource, str(path.relative_to(root)))
            counts[outcome] += 1
            if outcome == "skipped":
                print(f"skipped {detail}")
            elif detail:
                problems.append(detail)
    for problem in problems:
        print(f"ERROR {problem}")
    print(
        f"k8s manifests: {counts['ok']} valid against Kubernetes {KUBERNETES_VERSION} (strict), "
        f"{counts['skipped']} custom resources skipped, {len(problems)} errors"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
