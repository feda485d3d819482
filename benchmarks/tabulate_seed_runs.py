"""Table of in-process seed runs (benchmarks/stream_cpu.py JSONs matching a glob): per-task final Dice, Overall, BWT,
share of a joint reference, time and the last round's lowest per-task replay agreement; mean, sd and median.

    .venv/bin/python benchmarks/tabulate_seed_runs.py 'benchmarks/results/bench-5tasks-bank/c2gr-bank-seed*.json' 84.4
"""
import glob
import json
import statistics as st
import sys
rows=[]
for f in sorted(glob.glob(sys.argv[1])):
    d=json.load(open(f)); m=d['metrics']; seed=f.split('seed')[-1].split('.')[0]
    R=d['matrix']['values']; tasks=d['matrix'].get('tasks') or d['matrix'].get('columns')
    ag={k.split('/')[1]:v for k,v in d['rounds'][-1].items() if k.startswith('replay_agreement/')}
    rows.append((seed,m['overall'],m['bwt'],[R[-1][j]*100 for j in range(len(R))],d['train_s']/60,d['wall_s']/60,ag))
joint = float(sys.argv[2])
out=[f"| seed | "+" | ".join(tasks)+f" | Overall | BWT | % of joint ({joint}) | training min | wall min | last-round replay agreement (min) |","|"+"---|"*(len(tasks)+7)]
for s,o,b,per,tm,wm,ag in rows:
    out.append(f"| {s} | "+" | ".join(f"{x:.1f}" for x in per)+f" | {o:.1f} | {b:.1f} | {o/joint*100:.0f} | {tm:.1f} | {wm:.1f} | {min(ag.values()):.2f} |")
if len(rows)>1:
    O=[r[1] for r in rows]; B=[r[2] for r in rows]
    out.append(f"| mean ± sd ({len(rows)} seeds) | "+" | ".join("" for _ in tasks)+f" | {st.mean(O):.1f} ± {st.stdev(O):.1f} | {st.mean(B):.1f} ± {st.stdev(B):.1f} | {st.mean(O)/joint*100:.0f} | | | |")
    out.append(f"| median | "+" | ".join("" for _ in tasks)+f" | {st.median(O):.1f} | {st.median(B):.1f} | {st.median(O)/joint*100:.0f} | | | |")
print("\n".join(out))
