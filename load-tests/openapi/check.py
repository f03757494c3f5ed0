"""Checks of the API's OpenAPI document, run by services/api/tests/api/openapi.rs
with the validators pinned in requirements.txt beside this file.

    check.py document DOC.json
        DOC is a valid OpenAPI 3.1 document (openapi-spec-validator).

    check.py responses DOC.json SAMPLES.json
        Each sample, {"method", "path", "status", "body"} with `path` as the
        document names it, is valid against the JSON schema the document gives
        that operation's answer with that status (formats checked, `$ref`s
        resolved against the document).

Prints every failure and exits 1 when there is one.
"""

import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator


def check_document(doc):
    validate(doc, cls=OpenAPIV31SpecValidator)
    print(f"valid OpenAPI {doc['openapi']} document: {len(doc['paths'])} paths")
    return []


def follow(doc, node):
    """Follows `$ref`s within the document until a node without one."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def check_responses(doc, samples):
    failures = []
    for sample in samples:
        label = f"{sample['method']} {sample['path']} -> {sample['status']}"
        operation = doc["paths"].get(sample["path"], {}).get(sample["method"].lower())
        if operation is None:
            failures.append(f"{label}: no such operation in the document")
            continue
        responses = operation.get("responses", {})
        response = responses.get(str(sample["status"])) or responses.get("default")
        if response is None:
            failures.append(f"{label}: the status is not documented")
            continue
        content = follow(doc, response).get("content", {})
        if sample["body"] is None:
            if "application/json" in content:
                failures.append(f"{label}: no body, but the document promises one")
            continue
        media = content.get("application/json")
        if media is None or "schema" not in media:
            failures.append(f"{label}: a JSON body the document does not describe")
            continue
        # The schema, with the document's components beside it so that its
        # `#/components/...` references resolve.
        schema = dict(media["schema"])
        schema["components"] = doc.get("components", {})
        validator = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        for error in validator.iter_errors(sample["body"]):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            failures.append(f"{label}: at {where}: {error.message}")
    print(f"{len(samples)} responses checked, {len(failures)} failures")
    return failures


def main(argv):
    if len(argv) >= 2 and argv[0] == "document":
        with open(argv[1]) as f:
            failures = check_document(json.load(f))
    elif len(argv) >= 3 and argv[0] == "responses":
        with open(argv[1]) as f:
            doc = json.load(f)
        with open(argv[2]) as f:
            failures = check_responses(doc, json.load(f))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
