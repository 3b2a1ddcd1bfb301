"""synth/checkpoint.py: what a checkpoint key digests (resume itself: tests/stages, tests/training)."""


def test_the_checkpoint_key_digests_the_code_that_shapes_records():
    from safurai_csharp.csharp import modes, split
    from safurai_csharp.synth import completion_format, decomposed, literals, parse, program
    from safurai_csharp.synth.checkpoint import record_code, source_digest

    def digests(*modules):
        return {source_digest(m) for m in modules}

    assert digests(parse, program, modes) <= set(record_code("answer"))
    assert digests(parse, program, modes, decomposed, completion_format, literals, split) <= set(
        record_code("decomposed"))
    assert source_digest(decomposed) not in record_code("answer")
