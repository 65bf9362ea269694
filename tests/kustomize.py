"""A Kustomize build in Python, for the offline checks of deploy/k8s.

Covers what the manifests use: resources (files and directories), namespace, images,
configMapGenerator with files and a fixed name, and inline JSON 6902 patches aimed by
kind and name. Anything else in a kustomization.yaml is refused, so a manifest that
starts to use it fails the tests instead of being checked half.
`tests/unit/test_k8s_manifests.py` compares the result with `kubectl kustomize`
where kubectl is installed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "configMapGenerator",
    "patches",
}


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomization(directory: Path) -> Manifest:
    data: Manifest = yaml.safe_load((directory / "kustomization.yaml").read_text("utf-8"))
    unknown = set(data) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}: fields this build does not know: {sorted(unknown)}")
    return data


def build(directory: Path) -> list[Manifest]:
    spec = kustomization(directory)
    objects: list[Manifest] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        objects.extend(build(path) if path.is_dir() else load_documents(path))
    objects.extend(_generated_config_maps(directory, spec.get("configMapGenerator", [])))
    for patch in spec.get("patches", []):
        _apply_patch(objects, patch)
    for image in spec.get("images", []):
        _set_image(objects, image)
    if "namespace" in spec:
        for obj in objects:
            obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def _generated_config_maps(directory: Path, generators: list[Manifest]) -> list[Manifest]:
    made = []
    for generator in generators:
        options = generator.get("options", {})
        if not options.get("disableNameSuffixHash"):
            raise KustomizeError(f"{generator['name']}: only fixed names are supported")
        data = {}
        for entry in generator.get("files", []):
            key, _, file = entry.rpartition("=")
            path = directory / file
            data[key or path.name] = path.read_text(encoding="utf-8")
        metadata: Manifest = {"name": generator["name"]}
        if options.get("labels"):
            metadata["labels"] = dict(options["labels"])
        made.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    return made


def _apply_patch(objects: list[Manifest], patch: Manifest) -> None:
    target = patch["target"]
    hits = [
        obj
        for obj in objects
        if obj["kind"] == target["kind"] and obj["metadata"]["name"] == target["name"]
    ]
    if not hits:
        raise KustomizeError(f"patch target {target} matches nothing")
    for obj in hits:
        for op in yaml.safe_load(patch["patch"]):
            _json_patch(obj, op)


def _json_patch(obj: Manifest, op: Manifest) -> None:
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in op["path"][1:].split("/")
    ]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if op["op"] == "replace":
        if last not in node:
            raise KustomizeError(f"replace of a missing {op['path']}")
        node[last] = copy.deepcopy(op["value"])
    elif op["op"] == "add":
        node[last] = copy.deepcopy(op["value"])
    elif op["op"] == "remove":
        del node[last]
    else:
        raise KustomizeError(f"patch op {op['op']!r} is not supported")


def _set_image(objects: list[Manifest], image: Manifest) -> None:
    for obj in objects:
        spec = pod_spec(obj)
        for container in [] if spec is None else spec["containers"]:
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def pod_template(obj: Manifest) -> Manifest | None:
    """The pod template of a Deployment or Job; None for other kinds."""
    if obj["kind"] in ("Deployment", "Job"):
        template: Manifest = obj["spec"]["template"]
        return template
    return None


def pod_spec(obj: Manifest) -> Manifest | None:
    template = pod_template(obj)
    return None if template is None else template["spec"]
