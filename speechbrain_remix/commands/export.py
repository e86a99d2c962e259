"""``speechbrain-remix export RUN_DIR OUT_DIR``: a run's selected model as
a SpeechBrain pretrained folder (see :mod:`speechbrain_remix.export`)."""


def add_arguments(parser):
    parser.add_argument("run_dir", help="train.py output folder")
    parser.add_argument("out_dir", help="folder to write (new or empty)")
    parser.add_argument("--onnx", action="store_true",
                        help="also write model.onnx (models that export)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty OUT_DIR")
    parser.add_argument("--device", default="cpu")


def run(args):
    from speechbrain_remix.export import export_run

    try:
        out = export_run(args.run_dir, args.out_dir, onnx=args.onnx,
                         force=args.force, device=args.device)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    except NotImplementedError as err:  # the folder is written; no ONNX
        print(f"exported {args.run_dir} to {args.out_dir}, without "
              f"model.onnx: {err}")
        return 1
    print(f"exported {args.run_dir} to {out}; enhance with: "
          f"speechbrain-remix enhance {out} NOISY... --out DIR")
    return 0
