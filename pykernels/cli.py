"""The `pykernels` command: info, bench [SUITE ...], train MODEL, eval MODEL."""

from __future__ import annotations

import argparse
import json
import sys


def _suites():
    from .bench import SUITES

    return SUITES


def _parse_threads(text: str):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,2, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("thread counts must be >= 1")
    return values


def _parse_ops(text: str):
    from .bench.main import OPS

    ops = tuple(o.strip() for o in text.split(",") if o.strip())
    unknown = [o for o in ops if o not in OPS]
    if not ops or unknown:
        raise argparse.ArgumentTypeError(f"unknown op(s) {unknown}; choose from {', '.join(OPS)}")
    return ops


def _bench_main(args) -> int:
    """The bare `pykernels bench`: the main run, the table and the report."""
    import time

    import pykernels
    from .bench import main as bench_main
    from .bench.report import format_table, main_table_rows, write_report

    threads = max(args.threads) if args.threads else pykernels.get_num_threads()
    cfg = bench_main.Config(quick=args.quick, full=args.full, threads=threads,
                            device=args.device, ops=args.ops or bench_main.OPS,
                            repeats=args.repeats or (3 if args.quick else 5))
    _, gpu_on, gpu_note = bench_main.devices(cfg)
    if args.device == "cuda" and not gpu_on:
        print(f"--device cuda: {gpu_note}", file=sys.stderr)
        return 2
    pykernels.info()
    print(f"\npykernels bench: {cfg.size} run, {threads} thread(s), ops {','.join(cfg.ops)}; "
          f"GPU {gpu_note or 'included'}", flush=True)
    start = time.perf_counter()
    results = bench_main.run(cfg, show_progress=not args.no_progress)
    plots = write_report(results, args.out)
    print()
    print(format_table(main_table_rows(results), title="Kernels (x: other's time / pykernels' "
                                                        "time, > 1 means pykernels is faster)"))
    rep = results.get("alexnet")
    if rep:
        m, lit = rep["measured"], rep["literature"]
        print(f"\nAlexNet training step, measured here: batch {rep['cpu']['batch']}, "
              f"{m['images_per_s']:.2f} images/s -> one ILSVRC-2012 epoch {m['epoch_hours']:.1f} h,"
              f" 90 epochs {m['ninety_epochs_days']:,.0f} days; {m['achieved_gflops']:.1f} "
              f"GFLOP/s = {100 * m['of_peak']:.1f}% of the measured CPU peak.")
        print(f"2012 (literature): 2x GTX 580, 90 epochs in 5-6 days "
              f"(~{lit['derived_images_per_s'][0]:.0f}-{lit['derived_images_per_s'][1]:.0f} "
              f"images/s derived). GPU here: {rep['gpu']}.")
    print(f"\nreport: {args.out}/report.md, results.json, "
          f"{', '.join(p for p in plots.values() if p)} "
          f"({time.perf_counter() - start:.0f} s)")
    return 0


def _bench(args) -> int:
    from .bench.report import format_table

    if not args.suites:
        return _bench_main(args)
    suites = _suites()
    chosen = args.suites
    unknown = [s for s in chosen if s not in suites]
    if unknown:
        print(f"unknown suite(s) {unknown}; choose from {sorted(suites)}", file=sys.stderr)
        return 2
    import pykernels

    pykernels.info()
    threads = args.threads or (1, pykernels.get_num_threads())
    threads = tuple(sorted(set(threads)))
    results, failed = {}, []
    for name in chosen:
        suite = suites[name]
        print(f"\n== {name}: {suite.title}", flush=True)
        try:
            rows = suite.run(threads=threads, repeats=args.repeats or 7, quick=args.quick)
        except (ImportError, RuntimeError) as exc:  # e.g. a GPU suite on a CPU-only machine
            print(f"skipped: {exc}", flush=True)
            failed.append(name)
            continue
        results[name] = rows
        print(format_table(rows), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": pykernels.build_info(), "results": results}, fh, indent=2,
                      default=str)
        print(f"\nwrote {args.json}")
    return 1 if failed else 0


def _presets():
    from .train import PRESETS

    return PRESETS


def _default_weights(args) -> str:
    data_name = args.data if args.data == "digits" else "mnist"
    return f"{args.model}_{data_name}.npz"


def _train(args) -> int:
    import pykernels
    from .train import fit

    if args.distributed:
        if args.device != "cpu":
            print("--distributed trains on the CPU; drop --device cuda", file=sys.stderr)
            return 2
        return _train_distributed(args)
    if args.device == "cuda" and not pykernels.cuda.is_available():
        print("--device cuda: no usable CUDA GPU (or pykernels was built without CUDA)",
              file=sys.stderr)
        return 2
    if args.sync_bn:
        print("--sync-bn needs --distributed", file=sys.stderr)
        return 2
    if args.threads:
        pykernels.set_num_threads(args.threads)
    out = args.out or _default_weights(args)
    checkpoint = args.checkpoint or (_default_checkpoint(out) if args.resume else None)
    _, accuracy, seconds = fit(args.model, args.data, args.epochs, args.seed, args.batch_size,
                               args.lr, progress=True, out=out, checkpoint=checkpoint,
                               resume=args.resume, device=args.device)
    print(f"{args.model} on {args.data} ({args.device}): test accuracy {accuracy:.4f} "
          f"({seconds:.1f} s training); weights saved to {out}")
    return 0


def _default_checkpoint(out: str) -> str:
    return (out[:-4] if out.endswith(".npz") else out) + ".ckpt.npz"


def _train_distributed(args) -> int:
    """`mpirun -n P pykernels train MODEL --distributed`: data-parallel over
    the ranks; an exception on any rank aborts them all."""
    import pykernels
    from . import distributed
    from .train import fit

    comm = distributed.world()

    def run() -> int:
        rank, size = comm.Get_rank(), comm.Get_size()
        # Split the node's cores between the ranks that share it.
        threads = args.threads or max(1, pykernels._cpu.num_procs() // distributed.local_size(comm))
        pykernels.set_num_threads(threads)
        out = args.out or _default_weights(args)
        checkpoint = args.checkpoint or _default_checkpoint(out)
        report = {}
        _, accuracy, seconds = fit(args.model, args.data, args.epochs, args.seed,
                                   args.batch_size, args.lr, progress=True, out=out,
                                   distributed=True, sync_bn=args.sync_bn,
                                   checkpoint=checkpoint, resume=args.resume, report=report)
        if rank == 0:
            epochs = report["epoch_seconds"]
            per_epoch = sum(epochs) / max(1, len(epochs))
            print(f"{args.model} on {args.data}, {size} ranks x {threads} threads: test "
                  f"accuracy {accuracy:.4f} ({seconds:.1f} s training, {per_epoch:.2f} s per "
                  f"epoch, allreduce {report['allreduce_seconds']:.2f} s on rank 0); weights "
                  f"saved to {out}, checkpoint {checkpoint}", flush=True)
        return 0

    return distributed.run_or_abort(run, comm)


def _eval(args) -> int:
    from .train import eval_saved

    weights = args.weights or _default_weights(args)
    accuracy = eval_saved(args.model, weights, args.data, args.seed)
    print(f"{args.model} ({weights}) on {args.data}: test accuracy {accuracy:.4f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pykernels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, CPU instruction set, threads and GPU")
    bench = sub.add_parser(
        "bench", help="benchmark this machine and write a report (or run named suites)",
        description="Without SUITE: the main run -- ceilings, every op against the NumPy "
                    "reference and its peer, the AlexNet step -- printed as a table and "
                    "written to a report folder. With SUITE names: those suites' tables.")
    bench.add_argument("suites", nargs="*", help="suite names (see --list); none: the main run")
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer and smaller shapes")
    size.add_argument("--full", action="store_true",
                      help="main run: more shapes, AlexNet at batch 32 (several minutes)")
    bench.add_argument("--ops", type=_parse_ops,
                       help="main run: comma list of gemm,gemm-ladder,conv,pool,batchnorm,"
                            "relu,lstm,sgd,alexnet (default: all)")
    bench.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                       help="main run: cpu, cuda, or all (default: the CPU, plus the GPU "
                            "when usable)")
    bench.add_argument("--threads", type=_parse_threads, default=None,
                       help="main run: threads for every contender (default: all cores); "
                            "suites: comma-separated counts (default 1,all)")
    bench.add_argument("--out", default="pykernels-report",
                       help="main run: report folder (default ./pykernels-report)")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.add_argument("--repeats", type=int, default=None,
                       help="samples per case, median (default 5; suites 7)")
    bench.add_argument("--json", help="suites: also write the rows as JSON to this file")
    bench.add_argument("--list", action="store_true", help="list the suites and exit")
    train = sub.add_parser("train", help="train a model (lenet, resnet20, alexnet, lstm)")
    train.add_argument("model", choices=sorted(_presets()))
    train.add_argument("--data", default="digits",
                       help="'digits' (built in) or a directory of MNIST IDX files")
    train.add_argument("--epochs", type=int, help="default: the model's preset")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, help="OpenMP threads (default: all)")
    train.add_argument("--out", help="weights file (default: MODEL_DATA.npz)")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel over MPI ranks (launch with mpirun -n P); "
                       "--batch-size is the global batch")
    train.add_argument("--sync-bn", action="store_true",
                       help="with --distributed: batch-norm statistics over all ranks")
    train.add_argument("--checkpoint", help="checkpoint written after every epoch (default "
                       "with --distributed or --resume: MODEL_DATA.ckpt.npz)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint's last saved epoch")
    train.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                       help="train on the CPU or on the GPU (CuPy arrays, pykernels' CUDA kernels)")
    evaluate = sub.add_parser("eval", help="report test accuracy of saved weights")
    evaluate.add_argument("model", choices=sorted(_presets()))
    evaluate.add_argument("--weights", help="weights file (default: MODEL_DATA.npz)")
    evaluate.add_argument("--data", default="digits")
    evaluate.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "info":
        import pykernels

        pykernels.info()
        return 0
    if args.command == "train":
        return _train(args)
    if args.command == "eval":
        return _eval(args)
    if args.list:
        for name, suite in _suites().items():
            print(f"{name:10s} {'(default) ' if suite.default else ''}{suite.title}")
        return 0
    return _bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
