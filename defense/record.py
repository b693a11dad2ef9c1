"""The verification record, `verification.json`: its kind and schema version, owned here so that readers (the
mitigation report, `idia check`) can name them without importing what makes one (torch, the attack).

verification.json:
  kind, schema_version, manifest
  defense     {kind: a registry family (redact|perturb), variant (text, image, text+image, noise, project),
              settings, record: {losses, checkpoint_sha256_before, checkpoint_sha256_after, seconds}}
  decision    {judged_at, before: {rule, boundary, threshold, fixed}, after_recalibrated: {...}}: every "after"
              below is judged at the before attack's decision boundary (the rule's recorded boundary: paper tau,
              the permutation level, the calibrated rule's null scores); the after model at its own boundary is
              `after_recalibrated`
  redacted    [{name, before, after, after_recalibrated}]  before/after: {score, member, p_value, mean_log_prob};
              after_recalibrated: {member, p_value}
  neighbours  [{name, shares: first|last, with, before, after, after_recalibrated}]  people who share a first or
              last name with a redacted person (with labels: members only)
  collateral  [{name, before, after, after_recalibrated}]  labelled members neither redacted nor neighbours
              (without labels: every audited person neither redacted nor a neighbour)
  nonmembers  [{name, before, after, after_recalibrated}]  labelled non-members (empty without labels): an
              identification after but not before is a false one the defense created
  summary     {redacted|neighbours|collateral|nonmembers: {n, identified_before, identified_after, rate_before,
              rate_after, newly_identified, identified_after_recalibrated}, utility: {task, n_images, n_classes,
              top1_before, top1_after, top1_before_ci95, top1_after_ci95, change, change_ci95, images_lost,
              images_gained, ci_method} or null without --utility}
  photos      null, or (when the defense trains on photos, or --unseen-photos) {rule, unlearn: {name: [{file,
              sha256}]}, verify: {...}}: every attack used only the verify photos
  probes      null or {rows: [{id, probe, redacted: {n, identified_before, identified_after, ...}, others: {n,
              identified_before, identified_after}, nonmembers: {...}, redacted_identified_after: [full names],
              dropped_as_ambiguous?}], heldout_templates}: the attack's templates, the held-out phrasings, and every
              name variant (first, last, initials, redacted or not), each after judged at its before's boundary
  relearning  null or {towers, data, lr, n_redacted, identified_after_defense, rows: [{steps,
              redacted_identified, came_back, identified, others_identified, n_others, checkpoint_sha256}]}
  probes_not_run  [{probe, why}]: every probe of a full verification this one did not run (unseen-photos,
              heldout, variant:<v>, relearning, utility)
  verdict     {forgotten, text, rule, probes_run, failed_probes, probes_not_run, per_person: [{name, forgotten,
              identified_by}]}: forgotten only when no probe run identifies any redacted person
  sweep       null or {kind, rows: [{strength, redacted_rate, others_rate, utility_top1}]}
  attack_before "before/results.json", attack_after "after/results.json", attack_after_recalibrated
              "after-recalibrated/results.json" or null (the same boundary: the after attack is that one)
"""

KIND_VERIFICATION = "idia-verification"
SCHEMA_VERSION = 3  # 3: decision, nonmembers, intervals, probes_not_run, verdict
