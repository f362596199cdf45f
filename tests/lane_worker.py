"""The background lane's warm worker: one Python process that runs the kit's command-line modules
one after another (`module.main(argv)` in the job's folder), so the lane's trainings pay for
starting Python, the kit and TensorFlow (about 10 s of CPU each here) once instead of once per job.

Protocol: one JSON object a line on stdin, {"module", "argv", "cwd"}; one JSON reply a line,
{"rc", "stdout", "stderr"}, on the file descriptor given as argv[1] (fd 1 goes to stderr, so
nothing TensorFlow's C++ code prints can corrupt a reply). Python-level output of each job is
captured, as a subprocess's pipes would be."""
import contextlib
import importlib
import io
import json
import os
import sys
import traceback


def serve(reply_fd: int) -> None:
    replies = os.fdopen(reply_fd, "w", encoding="utf-8")
    os.dup2(2, 1)
    for line in sys.stdin:
        job = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                os.chdir(job["cwd"])
                rc = importlib.import_module(job["module"]).main(job["argv"])
            except SystemExit as e:                   # argparse errors, --help
                rc = e.code if isinstance(e.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported as a failed command, as a process would
                traceback.print_exc()
                rc = 1
        replies.write(json.dumps({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
