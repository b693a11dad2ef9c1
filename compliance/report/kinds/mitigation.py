"""The mitigation report: a defense's `idia verify` record, for an ML team (the one verdict, identification of
the redacted people, their namesakes, everyone else and the non-members before and after, utility with its
interval, the probes and those not run, the relearning probe, the training curve and a perturbation's
trade-off). Records of schema 1 and 2 carry no verdict, non-members, intervals or probes-not-run: those parts are
left out for them.

Data minimisation: people are shown, and the carried record names them, by pseudonymous IDs (redacted-1,
namesake-1, person-1; `extracts.pseudonyms`) unless `--show-names` asks for their names; the whole record's
SHA-256 (the document ID) links the pseudonymous record to it."""

from __future__ import annotations

from idia.compliance.report import extracts, plots
from idia.compliance.report.attachments import Attachment
from idia.compliance.report.facts import Fact
from idia.compliance.report.kinds import ReportKind, Request, register
from idia.compliance.report.schema import VERIFICATION_RECORD
from idia.compliance.report.wording import ci, pct

NAME = "mitigation"
LONG_LIST = 8
# Settings that change nothing the report shows; they are in the record.
QUIET_SETTINGS = {"progress", "verbose"}
INPUT_LABELS = {
    "checkpoint": "Model checkpoint", "checkpoint_sha256_before": "Checkpoint SHA-256 before the defense",
    "checkpoint_sha256_after": "Checkpoint SHA-256 after the defense",
    "model_config_sha256": "Model configuration SHA-256", "names": "Names to forget",
    "labels_sha256": "Ground-truth labels SHA-256", "keep_names_sha256": "Names to keep SHA-256",
    "captions_sha256": "Captions SHA-256", "utility": "Utility task", "people": "Photos of the audited people",
    "reference": "Photos of the reference people", "images": "Photos", "forget": "Names to forget",
}


def _label(key: str) -> str:
    """A settings key as words: "drift_weight" → "drift weight", "lr" → "learning rate"."""
    words = {"lr": "learning rate", "sha256": "SHA-256"}
    return " ".join(words.get(w, w) for w in key.split("_"))


def _flatten(d, prefix: str = "") -> list[tuple[str, object]]:
    """Nested settings as (label, value) rows in the record's order; unset values and the quiet ones left out, a
    long list named, not spelled out."""
    rows: list[tuple[str, object]] = []
    for key, value in (d or {}).items():
        if value is None or key in QUIET_SETTINGS:
            continue
        label = f"{prefix}{_label(key)}"
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{label}: ")
        elif isinstance(value, list) and len(value) > LONG_LIST:
            rows.append((label, f"{len(value)} entries, listed in the record"))
        else:
            rows.append((label, value))
    return rows


def _input_rows(inputs: dict) -> list[tuple[str, object, bool]]:
    """The manifest's inputs as (label, value, is a hash) rows: unset inputs left out, files with their hash."""
    rows = []
    for key, value in (inputs or {}).items():
        label = INPUT_LABELS.get(key, _label(key))
        if value is None:
            continue
        if isinstance(value, dict) and "sha256" in value:
            what = value.get("file") or value.get("path")
            if isinstance(value.get("names"), list):
                what = f"{what} ({len(value['names'])} names)"
            if what:
                rows.append((label, what, False))
            rows.append((f"{label}: SHA-256", value["sha256"], True))
        elif isinstance(value, dict):
            rows += [(f"{label}: {_label(k)}", v, False) for k, v in value.items() if v is not None]
        elif isinstance(value, list):
            rows.append((label, f"{len(value)} files, each with its SHA-256 in the record", False))
        else:
            rows.append((label, value, "sha256" in key))
    return rows


def _weights(settings: dict) -> dict[str, float]:
    """Each loss term's weight as the defense's settings give it (one value per term; none when ambiguous)."""
    found: dict[str, set] = {}

    def walk(d):
        for k, v in (d or {}).items():
            if isinstance(v, dict):
                walk(v)
            elif k.endswith("_weight") and isinstance(v, (int, float)) and not isinstance(v, bool):
                found.setdefault(k[:-len("_weight")], set()).add(float(v))
    walk(settings)
    return {term: next(iter(vals)) for term, vals in found.items() if len(vals) == 1}


def shown(data: dict, request: Request) -> dict:
    """The record as the pages show it: names, or pseudonymous IDs by default."""
    return data if request.show_names else extracts.replace_names(data, extracts.pseudonyms(data))


def carry(data: dict, request: Request) -> tuple[list[Attachment], dict]:
    if request.show_names:
        return [Attachment(request.source_name, request.raw, "the record this report renders (its SHA-256 is the "
                           "document ID)", relationship="Source")], data
    record = shown(data, request)
    wrapped = extracts.wrap(NAME, request.raw, request.source_name, data["kind"], extracts.PSEUDONYMOUS_OMITTED,
                            record)
    name = f"{request.source_name.rsplit('.', 1)[0]}-pseudonymous.json"
    return [Attachment(name, extracts.serialised(wrapped), "the record this report renders, every name replaced "
                       "by its pseudonymous ID; its source.sha256 is the document ID", relationship="Source")], record


def facts(record: dict) -> list[Fact]:
    """Page 1's figures: the redacted people, their namesakes and everyone else before → after, and utility."""
    s = record["summary"]
    r, nb, c, u = s["redacted"], s["neighbours"], s["collateral"], s.get("utility")
    out = [Fact("redacted", f"{r['identified_before']} → {r['identified_after']}",
                f"of {r['n']} redacted people identified by the attack's own prompts (before → after)"
                + _by_any_probe(record.get("verdict"))),
           Fact("others", f"{nb['identified_before']} → {nb['identified_after']}",
                f"of {nb['n']} namesakes identified; others: {c['identified_before']} → "
                f"{c['identified_after']} of {c['n']}" + _newly_identified(s))]
    if u:
        out.append(Fact("utility", f"{pct(u['top1_before'])} → {pct(u['top1_after'])}",
                        f"utility: top-1 accuracy on {u['n_images']} labelled images ({u['n_classes']} classes)"
                        + (f"; change {pct(u['change'])} (95% CI {ci(u['change_ci95'])})" if "change_ci95" in u
                           else "")))
    else:
        out.append(Fact("utility", "not measured", "utility (the verification was run without --utility)"))
    return out


def _by_any_probe(verdict: dict | None) -> str:
    if not verdict:
        return ""
    still = sum(1 for p in verdict.get("per_person") or [] if not p["forgotten"])
    return f"; by any probe after: {still}"


def _newly_identified(summary: dict) -> str:
    nm = summary.get("nonmembers")
    return f"; non-members newly identified: {nm['newly_identified']} of {nm['n']}" if nm and nm.get("n") else ""


def _redacted_forms(settings: dict | None) -> str | None:
    """The name forms the defense also redacted (`variants`, of any stage of a chain), as given."""
    found = []

    def walk(d):
        for k, v in (d or {}).items():
            if isinstance(v, dict):
                walk(v)
            elif k == "variants" and v:
                found.append(v)
    walk(settings)
    return ", ".join(dict.fromkeys(x if isinstance(x, str) else ",".join(x) for x in found)) or None


def _tuning_rows(tuning: dict | None) -> list[dict]:
    """The seeds an image redaction's defaults were chosen on, then the one they were judged on, as table rows."""
    if not tuning:
        return []
    seeds = [(seed, "chosen on", row) for seed, row in (tuning.get("chosen_on") or {}).items()]
    if tuning.get("held_out"):
        seeds.append((tuning["judged_on_world_seed"], "judged on (never used for choosing)", tuning["held_out"]))
    out = []
    for seed, role, row in seeds:
        (rb, ra, rn), (ob, oa, on), (ub, ua) = row["redacted"], row["others"], row["utility"]
        out.append({"seed": seed, "role": role, "redacted": f"{rb} → {ra} of {rn}",
                    "others": f"{ob} → {oa} of {on} ({100 * (oa - ob) / on:+.1f} points)",
                    "nonmembers": f"{row['nonmembers_new'][0]} of {row['nonmembers_new'][1]}",
                    "utility": f"{100 * ub:.1f}% → {100 * ua:.1f}%", "meets_goal": row["meets_goal"]})
    return out


def build(data: dict, request: Request) -> tuple[dict, list]:
    v = shown(data, request)
    settings = v["defense"].get("settings")
    record = v["defense"].get("record") or {}
    losses = record.get("losses") or []
    sweep = v.get("sweep")
    rows = sweep["rows"] if sweep and sweep.get("rows") else None
    photos = v.get("photos") or {}
    summary = v["summary"]
    nonmembers = [r for r in v.get("nonmembers") or [] if r["before"]["member"] or r["after"]["member"]]
    groups = [("redacted", "People asked to be forgotten (redacted)", v["redacted"]),
              ("neighbours", "Namesakes of redacted people (share a first or last name)", v["neighbours"]),
              ("collateral", "Everyone else audited (collateral)", v["collateral"])]
    if "nonmembers" in summary:
        groups.append(("nonmembers", "Non-members (the model never saw them): identified before or after",
                       nonmembers))
    return {
        "v": v, "show_names": request.show_names,
        "verdict": v.get("verdict"),
        "redacted_forms": _redacted_forms(settings),
        "decision": v.get("decision"),
        "not_run": v.get("probes_not_run") or [],
        "nonmembers": summary.get("nonmembers"),
        "recalibrated": any("identified_after_recalibrated" in summary[k] for k, _, _ in groups),
        "utility_ci": bool(summary.get("utility") and "change_ci95" in summary["utility"]),
        "settings_rows": _flatten(settings),
        "tuning": v["defense"].get("tuning"),
        "tuning_rows": _tuning_rows(v["defense"].get("tuning")),
        "input_rows": _input_rows(v["manifest"].get("inputs")),
        "groups": groups,
        "losses_plot": plots.training_curve(losses, _weights(settings)) if losses else None,
        "loss_weights": _weights(settings),
        "sweep_plot": plots.sweep(rows, sweep.get("kind", "")) if rows else None,
        "tradeoff_plot": plots.tradeoff(rows, sweep.get("kind", "")) if rows else None,
        "probes": (v.get("probes") or {}).get("rows") or [],
        "relearning": v.get("relearning"),
        "photos": v.get("photos"),
        "n_verify_photos": sum(len(x) for x in (photos.get("verify") or {}).values()),
        "n_unlearn_photos": sum(len(x) for x in (photos.get("unlearn") or {}).values()),
    }, []


register(ReportKind(NAME, "Mitigation verification", VERIFICATION_RECORD, build, carry, facts))
