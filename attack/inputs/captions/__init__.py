"""Whom to audit: the people a training set's captions name, how often, and their photos (`idia scan`).

An input stage before the attack: it decides who is asked about. The modules, in the order the data flows:
  formats/   one module per caption source (Parquet, JSONL, CSV/TSV, text, webdataset tar): files into pieces,
             pieces into captions (and, where the data set has them, images)
  lexicon    the word lists (first names from gender-guesser's dictionary, common English words, titles,
             places, organisations, brands, name particles)
  extract    the rule-based name finder (ner: a user's own spaCy or GLiNER folder instead)
  tally      counting per piece, merged exactly in bounded memory (spilling to disk past a limit)
  engines/   who reads the pieces: local processes or Ray tasks (the attack's --engine)
  finder     which name finder a process uses
  run        plan → count → names.csv + scan.json; gather: the photos of the people named often enough
"""
