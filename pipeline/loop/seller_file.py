"""A plan file the seller adds: the stored plan it is for, the version it was written from, and its edits laid on the
current version so that what the prospect changed since is kept (or undone only when the seller says --revert)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.errors import PlanError, StoreError
from pipeline.plan.diff import diff
from pipeline.plan.front_matter import line_finder, read_front_matter
from pipeline.plan.identity import describe, same_prospect
from pipeline.plan.merge import Part, changed_parts, merge, part_label
from pipeline.plan.model import Plan, Reason, Version
from pipeline.plan.timeline import resolve
from pipeline.render.format import change_summary
from pipeline.store import Store

_MAX_SUFFIX = 99
# The reasons of versions made from a whole plan the seller wrote: a file, or version 1 typed in an email.
_WHOLE = frozenset(r.value for r in Reason if r.whole_plan)


@dataclass(frozen=True)
class Marks:
    """What a file's front matter says about where it belongs: its own `id:`, and the `version:` it came from."""

    plan_id: str | None
    version: int | None


def marks(text: str, file: str) -> Marks:
    """The `id:` and `version:` a plan file gives (a file that parsed as a plan has readable front matter)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    front, body = read_front_matter(lines, required=False)
    version = front.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise PlanError(
            f"version {version!r} is not a version number", file=file, line=line_finder(lines[:body])("version:"),
            hint="`version:` is the whole number of the version the file was exported from; without it the file "
            "counts from the latest version the seller wrote whole",
        )  # fmt: skip
    return Marks(str(front["id"]) if front.get("id") else None, version)


def plan_for(store: Store, plan: Plan, *, explicit: bool, file: str) -> tuple[str, Version | None]:
    """The id the file's plan is stored under and that plan's current version (None for a new plan).

    A given id is the plan it names, which must be the same prospect's; a derived id that another prospect's plan
    holds gets -2, -3 ... (the first free one, or the one that is this prospect's)."""
    if explicit:
        current = store.current(plan.id)
        if current is not None and not same_prospect(current.plan.prospect, plan.prospect):
            raise StoreError(
                f"{file}: {plan.id} is the plan of {describe(current.plan.prospect)}, not of "
                f"{describe(plan.prospect)}; adding it would make one prospect's plan a version of another's",
                hint="give the file an `id:` of its own to make it a new plan (e.g. remove the `id:` line and one is "
                "derived from the prospect), or correct its prospect",
            )
        return plan.id, current
    for n in range(1, _MAX_SUFFIX + 1):
        candidate = plan.id if n == 1 else f"{plan.id}-{n}"
        current = store.current(candidate)
        if current is None or same_prospect(current.plan.prospect, plan.prospect):
            return candidate, current
    raise StoreError(f"{file}: there are {_MAX_SUFFIX} plans with ids like {plan.id!r} already",
                     hint="give the file an `id:` of its own")  # fmt: skip


def base_of(store: Store, plan_id: str, current: Version, version: int | None, file: str) -> Version:
    """The version the file was written from: its `version:`, else the latest the seller wrote whole."""
    if version is not None:
        if version > current.number:
            raise StoreError(
                f"{file}: {plan_id} has no version {version} (its versions are 1 to {current.number})",
                hint=f"`version:` is the version the file was exported from: `mutualplan export {plan_id}` writes it",
            )
        return current if version == current.number else store.version(plan_id, version)
    records = store.version_records(plan_id)
    own = next((r for r in reversed(records) if r.reason in _WHOLE), records[0])
    return current if own.number == current.number else own.to_version()


@dataclass(frozen=True)
class Rebased:
    """The file's plan laid on the current version: the versions since its base that it keeps, and, under
    --revert, what of theirs it undoes (one line each)."""

    plan: Plan
    base: Version
    kept: tuple[Version, ...]
    undone: tuple[str, ...]


def rebase(store: Store, plan: Plan, current: Version, base: Version, *, revert: bool, file: str) -> Rebased:
    """The file's edits to its base laid on the current version; a StoreError lists what they would undo of the
    versions since, unless `revert`."""
    if base.number == current.number:
        return Rebased(plan, base, (), ())
    since = tuple(store.versions(current.plan_id)[base.number :])
    merged = merge(base.plan, plan, current.plan, mine_wins=revert)
    _check(merged.plan, current, file)
    if not merged.clashes:
        return Rebased(merged.plan, base, since, ())
    reverted = merged.plan if revert else merge(base.plan, plan, current.plan, mine_wins=True).plan
    undone = tuple(_undone(current.plan, reverted, merged.clashes))
    if revert:
        return Rebased(merged.plan, base, since, undone)
    touched = [v for v, before in zip(since, (base, *since), strict=False)
               if changed_parts(before.plan, v.plan) & set(merged.clashes)]  # fmt: skip
    # A reordered timeline is no part of one version: then every version since is named.
    who = ", ".join(f"version {v.number} ({v.reason} by {v.author})" for v in touched or since)
    lines = "\n".join(f"  - {line}" for line in undone)
    raise StoreError(
        f"{file} was written from version {base.number} of {current.plan_id}, and {who} changed the same "
        f"part(s) since; adding it would undo:\n{lines}",
        hint=f"export the current version (`mutualplan export {current.plan_id} --out "
        f"{current.plan_id}-v{current.number}.md`), make your edits there and add that; or add this file with "
        "--revert to undo those changes",
    )


def _check(plan: Plan, current: Version, file: str) -> None:
    # Parts merged one by one can disagree (a step counted from one the other side removed): never store that.
    try:
        for m in plan.milestones:
            plan.resolve_owner(m.owner)
        resolve(plan)
    except PlanError as exc:
        raise StoreError(
            f"{file} and version {current.number} of {current.plan_id} cannot be combined: {exc.reason}",
            hint=f"export the current version (`mutualplan export {current.plan_id}`), make your edits there and "
            "add that",
        ) from None


def _undone(current: Plan, reverted: Plan, clashes: tuple[Part, ...]) -> list[str]:
    """One line per clash: what taking the file's side changes from the current version."""
    changes = diff(current, reverted, old_version=0, new_version=0)
    ids = {key for kind, key in clashes if kind == "milestone"}
    shown = replace(
        changes,
        milestones=tuple(c for c in changes.milestones if c.id in ids),
        target=changes.target if ("target", "") in clashes else None,
        contacts_added=(), contacts_removed=(), texts=(),
    )  # fmt: skip
    lines = change_summary(reverted, shown)
    described = {c.id for c in shown.milestones}
    for kind, key in clashes:
        if (kind == "milestone" and key in described) or (kind == "target" and shown.target):
            continue
        lines.append(f"Changed: {part_label((kind, key), current, reverted)}")
    return lines
