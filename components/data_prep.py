"""KFP components: validate records, dedupe, split, report every rejected row; and the content digest
of an input URI that keys data prep's cache on the data rather than on the URI's text."""

from kubealign.kfp_codegen import stage_component

data_prep = stage_component(
    "data_prep", "data_prep",
    required=("kind: str", "input_uri: str", "splits: Output[Dataset]", "metrics: Output[Metrics]"),
    optional=("input_digest: str = ''", "tokenizer_digest: str = ''"),
    doc="Writes splits/train.jsonl, splits/eval.jsonl and splits/report.json. `input_digest` and "
        "`tokenizer_digest` (content_digest outputs of the data and of the model behind `tokenizer_uri`) are "
        "not read: they are part of the cache key, so changed data or a changed tokenizer reruns.")

content_digest = stage_component(
    "content_digest", None, required=("uri: str",), returns="str",
    doc="The content digest of `uri` (object ETag/version on object stores, sha256 locally). Never cached.")
