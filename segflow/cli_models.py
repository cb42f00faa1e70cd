"""``segflow assign`` (daily assignment by the champion) and ``segflow models`` (the model registry)."""

from __future__ import annotations

import json


def cmd_assign(args) -> None:
    from segflow.cli import _as_of
    from segflow.jobs.assign import assign_daily

    print(json.dumps(assign_daily(as_of=_as_of(args.as_of)).as_dict(), indent=2, default=str))


def cmd_models(args) -> None:
    from segflow.cli import _as_of
    from segflow.jobs.registry import list_versions, register_model

    if args.action == "register":
        result = register_model(as_of=_as_of(args.as_of)).as_dict()
    else:
        result = list_versions()
    print(json.dumps(result, indent=2, default=str))


def assign_args(p) -> None:
    from segflow.cli_types import as_of

    p.description = ("Compare today's customer features with the last weekly clustering's and assign the new and "
                     "changed customers with the champion's classifier; writes ml.segment_assignments_daily "
                     "(segment, probability, model version). See docs/model-registry.md.")
    p.add_argument("--as-of", type=as_of,
                   help="the day (must match the built features, ISO date/time); default: latest build")
    p.set_defaults(func=cmd_assign)


def models_args(p) -> None:
    from segflow.cli_types import as_of

    p.description = ("list: every model version with its status (champion | retired | rejected), metrics and "
                     "reason. register: store the week's model version and decide its promotion against the floors "
                     "(SEGFLOW_REGISTRY_MIN_*); `segflow segment` does this itself.")
    p.add_argument("action", choices=["list", "register"], help="list the versions, or register the week's model")
    p.add_argument("--as-of", type=as_of, help="register: the week (default: the latest segmentation run)")
    p.set_defaults(func=cmd_models)
