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


def _bench(args) -> int:
    from .bench.report import format_table

    suites = _suites()
    chosen = args.suites or [name for name, s in suites.items() if s.default]
    unknown = [s for s in chosen if s not in suites]
    if unknown:
        print(f"unknown suite(s) {unknown}; choose from {sorted(suites)}", file=sys.stderr)
        return 2
    import pykernels

    pykernels.info()
    results, failed = {}, []
    for name in chosen:
        suite = suites[name]
        print(f"\n== {name}: {suite.title}", flush=True)
        try:
            rows = suite.run(threads=args.threads, repeats=args.repeats, quick=args.quick)
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

    if args.threads:
        pykernels.set_num_threads(args.threads)
    out = args.out or _default_weights(args)
    _, accuracy, seconds = fit(args.model, args.data, args.epochs, args.seed, args.batch_size,
                               args.lr, progress=True, out=out)
    print(f"{args.model} on {args.data}: test accuracy {accuracy:.4f} "
          f"({seconds:.1f} s training); weights saved to {out}")
    return 0


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
    bench = sub.add_parser("bench", help="run benchmark suites (default: the main ones)")
    bench.add_argument("suites", nargs="*", help="suite names (see --list)")
    bench.add_argument("--threads", type=_parse_threads, default=(1, 2),
                       help="comma-separated thread counts (default 1,2)")
    bench.add_argument("--repeats", type=int, default=7, help="samples per case (median)")
    bench.add_argument("--quick", action="store_true", help="fewer and smaller shapes")
    bench.add_argument("--json", help="also write the rows as JSON to this file")
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
