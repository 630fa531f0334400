"""The Llama-Guard-style safety classifier: taxonomy, prompt, scoring, metrics.

- `taxonomy`: the unsafe-content categories (default: Llama Guard 3's S1-S14) and taxonomy files;
- `prompt`: the classifier prompt and target text, and parsing a generated verdict (pure text);
- `metrics`: precision, recall, F1, false positive rate and AUPRC, overall and per category (pure);
- `classifier`: load a classifier model folder and score conversations (torch, transformers).

Importing this package is cheap: `classifier` (the only module that needs torch) is not imported here.
"""
