"""Commands for sentence and token vectors: eval sts, tokens."""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from ..catalog import load_encoder
from ..encoders.transformer import TransformerEncoder
from ..errors import InputError
from ..evaluate.sts import evaluate_sts
from ._common import (
    add_cache,
    add_command,
    add_json,
    encoder_arg,
    encoder_from_args,
    note_undefined_correlation,
    print_json,
    progress,
    sts_columns,
)

__all__ = ["register"]


def cmd_eval_sts(args: argparse.Namespace) -> int:
    columns = sts_columns(args.columns)
    encoder = encoder_from_args(args)
    result = evaluate_sts(encoder, args.pairs, columns, progress=progress())
    if math.isnan(result.spearman):
        note_undefined_correlation(args.pairs, result.encoder)
    if args.json:
        print_json(result.to_dict())
        return 0
    fitted = " (fitted on the file's sentences)" if result.fitted_on_sentences else ""
    print(f"{args.pairs} with {result.encoder}{fitted}: {result.pairs} pairs")
    print(f"  Spearman {result.spearman:.4f} ({100 * result.spearman:.2f})")
    print(f"  Pearson  {result.pearson:.4f} ({100 * result.pearson:.2f})")
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    encoder = load_encoder(args.encoder)
    if not isinstance(encoder, TransformerEncoder):
        raise InputError(f"{encoder.name} has no contextual token vectors; use a transformer")
    found = [encoder.encode_tokens(text) for text in args.texts]
    if args.word is None:
        report = [{"text": t.text, "tokens": t.tokens, "offsets": t.offsets} for t in found]
        if args.json:
            print_json(report)
        else:
            for t in found:
                print(f"{t.text!r}: {len(t.tokens)} tokens")
                print("  " + " ".join(t.tokens))
        return 0
    vectors = np.vstack([t.word_vector(args.word) for t in found])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    if args.json:
        print_json({"word": args.word, "texts": args.texts, "cosine": sims.round(6).tolist()})
        return 0
    print(f"cosine between the contextual vectors of {args.word!r} in each text ({encoder.name}):")
    for i, text in enumerate(args.texts):
        row = " ".join(f"{s:5.2f}" for s in sims[i])
        print(f"  [{i + 1}] {row}   {text}")
    return 0


def register(sub: Any, eval_sub: Any) -> None:
    """Add these commands to the top-level and `eval` sub-parsers."""
    p = eval_sub.add_parser(
        "sts",
        help="Spearman/Pearson of cosine similarity on sentence pairs (STS-B, SICK)",
        description="Encode both sentences of each pair, correlate cosine with the gold score. "
        "Reads STS-B's and SICK's TSV as shipped; other layouts name their columns with "
        "--columns.",
    )
    p.set_defaults(func=cmd_eval_sts)
    add_cache(p)
    encoder_arg(p, quantize=True)
    p.add_argument("--pairs", required=True, metavar="TSV", help="sentence pairs with a header")
    p.add_argument(
        "--columns",
        metavar="S1,S2,SCORE",
        help="column names (default: STS-B's sentence1,sentence2,score or SICK's "
        "sentence_A,sentence_B,relatedness_score)",
    )
    add_json(p)

    p = add_command(
        sub,
        "tokens",
        "contextual token vectors: see a word's vector change with its sentence",
        cmd_tokens,
    )
    p.add_argument("texts", nargs="+", metavar="TEXT")
    encoder_arg(p, postprocess=False)
    p.add_argument(
        "--word",
        metavar="WORD",
        help="compare this word's vectors across the texts (a cosine matrix)",
    )
