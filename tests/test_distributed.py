from __future__ import annotations

import pytest

from training.distributed import environment_ranks, first_host


@pytest.mark.parametrize(
    "nodelist,host",
    [("gpu01", "gpu01"), ("gpu[003-005,010]", "gpu003"), ("node[7,9]", "node7"), ("a[01-02],b[3-4]", "a01"), ("n1,n2", "n1")],
)
def test_first_host_of_slurm_node_lists(nodelist, host):
    assert first_host(nodelist) == host


def test_torchrun_variables_win():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}
    assert environment_ranks(env) == (3, 8, 1)


def test_slurm_variables_set_master_address_and_port():
    env = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[12-13]", "SLURM_JOB_ID": "123456"}
    assert environment_ranks(env) == (5, 8, 1)
    assert env["MASTER_ADDR"] == "gpu12"
    assert env["MASTER_PORT"] == str(20000 + 123456 % 20000)


def test_single_process_without_variables():
    assert environment_ranks({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}) == (0, 1, 0)
