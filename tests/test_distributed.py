from __future__ import annotations

import pytest

from training.distributed import DistributedStartError, environment_ranks, expand_nodelist, first_host


@pytest.mark.parametrize(
    "nodelist,host",
    [("gpu01", "gpu01"), ("gpu[003-005,010]", "gpu003"), ("node[7,9]", "node7"), ("a[01-02],b[3-4]", "a01"), ("n1,n2", "n1")],
)
def test_first_host_of_slurm_node_lists(nodelist, host):
    assert first_host(nodelist) == host


@pytest.mark.parametrize(
    "nodelist,hosts",
    [
        ("gpu[01-04,07]", ["gpu01", "gpu02", "gpu03", "gpu04", "gpu07"]),
        ("gpu[8-11]", ["gpu8", "gpu9", "gpu10", "gpu11"]),
        ("a[098-100],b7", ["a098", "a099", "a100", "b7"]),
        ("nid[01-02]-ib,login", ["nid01-ib", "nid02-ib", "login"]),
        ("n1,n2", ["n1", "n2"]),
    ],
)
def test_node_lists_expand_in_slurms_order(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize("nodelist", ["gpu[a-b]", "gpu[01-02][3-4]", ""])
def test_node_lists_that_cannot_be_read_say_so(nodelist):
    with pytest.raises(ValueError, match="cannot parse SLURM node list"):
        expand_nodelist(nodelist)


@pytest.mark.parametrize("procid,localid,nodeid", [(p, p % 4, p // 4) for p in range(8)])
def test_two_nodes_with_four_gpus_each(procid, localid, nodeid):
    # the variables srun sets on a 2-node x 4-GPU allocation (--ntasks-per-node=4)
    env = {"SLURM_PROCID": str(procid), "SLURM_NTASKS": "8", "SLURM_LOCALID": str(localid), "SLURM_NODEID": str(nodeid),
           "SLURM_JOB_NODELIST": "gpu[03-04,09]", "SLURM_STEP_NODELIST": "gpu[04,09]", "SLURM_JOB_ID": "987654",
           "SLURM_NNODES": "2", "SLURM_TASKS_PER_NODE": "4(x2)", "SLURM_STEP_NUM_TASKS": "8"}
    assert environment_ranks(env) == (procid, 8, localid)
    assert env["MASTER_ADDR"] == "gpu04"  # the first node of the step, not of the whole allocation
    assert env["MASTER_PORT"] == str(20000 + 987654 % 20000)


def test_torchrun_variables_win():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}
    assert environment_ranks(env) == (3, 8, 1)


def test_slurm_variables_set_master_address_and_port():
    env = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[12-13]", "SLURM_JOB_ID": "123456",
           "SLURM_STEP_ID": "0"}
    assert environment_ranks(env) == (5, 8, 1)
    assert env["MASTER_ADDR"] == "gpu12"
    assert env["MASTER_PORT"] == str(20000 + 123456 % 20000)


def test_single_process_without_variables():
    assert environment_ranks({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}) == (0, 1, 0)


def test_the_batch_step_of_a_several_task_job_is_refused_with_the_srun_command():
    """What an sbatch script with --ntasks=2 exports to its batch step (read off the local SLURM):
    SLURM_NTASKS=2, SLURM_PROCID=0, no SLURM_STEP_* variables."""
    env = {"SLURM_NTASKS": "2", "SLURM_NPROCS": "2", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "1",
           "SLURM_JOB_NODELIST": "vm"}
    with pytest.raises(DistributedStartError, match="not started by srun.*`srun python train.py"):
        environment_ranks(env)
