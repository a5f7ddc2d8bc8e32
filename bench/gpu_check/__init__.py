"""The ready GPU check (``bench/gpu_check.sh``): a few short real studies on one GPU (the
quickstart on CUDA, a bf16 SmolLM2 study, a 4-bit QLoRA study, two trials sharing one device
at ``gpu: 0.5``), each reported as steps/s, peak GPU memory per trial and the best metric.
``--cpu`` runs the same cases at tiny sizes on the CPU, so CI keeps the script working."""
