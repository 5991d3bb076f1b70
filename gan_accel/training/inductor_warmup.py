"""Start Inductor's CPU vector-ISA checks early, in parallel, while Dynamo traces.

Before Inductor generates its first C++ kernel it asks which vector ISAs the compiler can build
(``torch._inductor.cpu_vec_isa.valid_vec_isa_list``): one small C++ build and one ``dlopen``
probe per candidate ISA and per extension (AVX2, AVX-512, VNNI, AMX, BF16, FP16), one after
the other on the compiling thread. With an empty Inductor cache that took 19 s of the 46 s the
first D-phase compile spent on a 2-core machine, while the other core sat idle.

Each candidate's check is independent and cached on the candidate (``functools.cache``) and on
disk (Inductor's cache), so running every candidate's check in its own daemon thread at start-up
changes nothing that Inductor decides: it asks the same question and reads the same cached
answer, sooner. The checks mostly wait on ``g++`` subprocesses, so they overlap with the main
thread's tracing rather than competing for the GIL.
"""

from __future__ import annotations

import logging
import threading


def start_cpu_isa_checks() -> threading.Thread:
    """Import Inductor and run every candidate vector ISA's build check, each in its own
    thread, behind one daemon thread (returned, started). Inductor's import (~3 s) happens
    there too, beside the data loading and model building."""
    # Inductor's C++ backend imports torch.utils.cpp_extension, which warns that no CUDA
    # runtime goes with the CUDA_HOME it found: noise on a CPU run, nothing to act on.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    thread = threading.Thread(target=_check_candidates, name="inductor-isa-checks", daemon=True)
    thread.start()
    return thread


def _check_candidates() -> None:
    from concurrent.futures import ThreadPoolExecutor

    try:
        from torch._inductor import cpu_vec_isa

        flags = cpu_vec_isa.x86_isa_checker()
        candidates = [isa for isa in cpu_vec_isa.supported_vec_isa_list
                      if all(flag in flags for flag in str(isa).split())]
        with ThreadPoolExecutor(max_workers=max(len(candidates), 1)) as pool:
            # bool(isa) runs and caches the same build check Inductor runs on first use
            list(pool.map(bool, candidates))
    except Exception:
        # Only a head start: whatever failed here (not x86, no compiler) Inductor meets again
        # in its own checks at the first compile, where it is reported in context.
        return
