"""Shared fixtures: a real tokenizer and a real (tiny) model built on the fly, and a real S3 server.

Nothing here is downloaded. What is real and what stands in:
- `tiny_tokenizer`: a real byte-level BPE (the `tokenizers` library) trained in the test session on
  synthetic chat text, wrapped as a transformers `PreTrainedTokenizerFast` with a ChatML template.
  Only its vocabulary is small (512); the template, special tokens and code paths are the real ones.
- `tiny_model_dir`: a real `LlamaForCausalLM` (2 layers, 64 wide, random weights, seed 0) saved as
  safetensors next to that tokenizer, loadable with `from_pretrained`.
- `s3_server`: moto in server mode, a real S3-protocol HTTP server on 127.0.0.1; s3fs/botocore speak
  real HTTP to it (signing, multipart, listing), so only the storage backend stands in for AWS.
"""

from __future__ import annotations

import logging
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML, as in SmolLM2-Instruct, minus the default system prompt: a system message is used only
# when the conversation has one. Every turn is `<|im_start|>{role}\n{content}<|im_end|>\n`.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORDS = (
    "the a an is are was be to of and in that it for on with as at by this from or what how why "
    "which who when where can could would should will do does did not no yes please thanks hello "
    "capital city france paris water boil temperature degrees python code function list sort "
    "number numbers two four plus minus times answer question explain simple short long story "
    "cat dog bird tree river mountain sun moon star light dark red blue green help write poem "
    "safe unsafe sorry cannot i you we they me my your our their model assistant user system"
).split()


def _synthetic_chat_lines(n: int, seed: int = 0) -> list[str]:
    """Chat-shaped text so that BPE learns merges for the words and markup the tests use."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        role = rng.choice(["system", "user", "assistant"])
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 16)))
        punct = rng.choice([".", "?", "!", ",", ":", " 2+2=4.", " 100 C."])
        lines.append(f"<|im_start|>{role}\n{words.capitalize()}{punct}<|im_end|>\n")
    return lines


def build_tiny_tokenizer(vocab_size: int = 512):
    """Train a byte-level BPE and wrap it as a transformers fast tokenizer with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknowns
        show_progress=False,
    )
    tok.train_from_iterator(_synthetic_chat_lines(600), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the tiny tokenizer (save_pretrained), loadable with AutoTokenizer."""
    path = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir: Path):
    """The tiny tokenizer, loaded back from disk the way the stages load one."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """A 2-layer, 64-wide Llama (random weights, seed 0) plus the tiny tokenizer, in one folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tiny_tokenizer.eos_token_id,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(path, safe_serialization=True)
    tiny_tokenizer.save_pretrained(path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-protocol server (moto, server mode) on 127.0.0.1; yields its endpoint URL.

    moto is a real HTTP server speaking the S3 REST protocol; s3fs/aiobotocore/botocore send it real,
    signed HTTP requests. Only the storage behind it stands in for AWS. The standard variables
    `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` point every client at it (botocore reads them itself;
    s3fs honours them through aiobotocore), and dummy credentials are set; all are restored after.
    """
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    no_file = str(tmp_path_factory.mktemp("aws") / "none")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", no_file)  # a developer's ~/.aws must not leak in
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", no_file)
        mp.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        # fsspec caches filesystem instances by constructor arguments, not by environment: drop any
        # S3 client made before the endpoint was set (and, after, any that points at this server).
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield endpoint
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


def create_bucket(name: str) -> str:
    """Create a bucket on the S3 endpoint from the environment; returns `s3://name`."""
    import s3fs

    fs = s3fs.S3FileSystem()
    if not fs.exists(name):
        fs.mkdir(name)
    return f"s3://{name}"


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, empty bucket on the test S3 server; returns `s3://<name>`."""
    return create_bucket(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def make_bucket(s3_server: str) -> Callable[[str], str]:
    """Factory for named buckets on the test S3 server: `make_bucket("data") -> "s3://data"`."""
    return create_bucket
