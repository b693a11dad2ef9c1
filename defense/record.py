"""The verification record, `verification.json`: its kind and schema version, owned here so that readers (the
mitigation report, `idia check`) can name them without importing what makes one (torch, the attack).

verification.json:
  kind, schema_version, manifest
  defense     {kind: a registry family (redact|perturb), variant (text, image, text+image, noise, project),
              settings, record: {losses, checkpoint_sha256_before, checkpoint_sha256_after, seconds}}
  redacted    [{name, before, after}]               before/after: {score, member, p_value, mean_log_prob}
  neighbours  [{name, shares: first|last, with, before, after}]  people who share a first or last name with a
              redacted person (with labels: members only)
  collateral  [{name, before, after}]  labelled members neither redacted nor neighbours (without labels: every
              audited person neither redacted nor a neighbour)
  summary     {redacted|neighbours|collateral: {n, identified_before, identified_after, rate_before, rate_after},
              utility: {task, n_images, n_classes, top1_before, top1_after} or null without --utility}
  photos      null, or (when the defense trains on photos, or --unseen-photos) {rule, unlearn: {name: [{file,
              sha256}]}, verify: {...}}: every attack used only the verify photos
  probes      null or {rows: [{probe, redacted: {n, identified_before, identified_after, ...}, others: {n,
              identified_before, identified_after}, dropped_as_ambiguous?}], heldout_templates}: the attack's
              templates, the held-out phrasings, and each name variant
  relearning  null or {towers, data, lr, n_redacted, identified_after_defense, rows: [{steps,
              redacted_identified, came_back, others_identified, n_others, checkpoint_sha256}]}
  sweep       null or {kind, rows: [{strength, redacted_rate, others_rate, utility_top1}]}
  attack_before "before/results.json", attack_after "after/results.json"
"""

KIND_VERIFICATION = "idia-verification"
SCHEMA_VERSION = 2
