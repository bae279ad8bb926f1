"""The spec's price table ("Product Pricing"), the packages a fresh install offers.

(module, name, cores, memory GB, device kind, device count, card model, CNY/minute, free h/month)
"""

W, T, P = "workarea", "train", "prediction"
FREE = 72

PACKAGES = [
    (W, "CPU Instance_4 Core_8GB Memory", 4, 8, "cpu", 0, "", "0.021", FREE),
    (
        W,
        "GPU Instance_Deep learning development card_6 Core 32GB Memory x1 Card",
        6,
        32,
        "cuda",
        1,
        "DL card",
        "0.081",
        0,
    ),
    (W, "GPU Instance_K40_6 Core 32GB Memory x1 Card", 6, 32, "cuda", 1, "K40", "0.104", 0),
    (W, "GPU Instance_V100_12 Core 50GB Memory x1 Card", 12, 50, "cuda", 1, "V100", "0.185", 0),
    (W, "GPU Instance_V100_48 Core 200GB Memory x4 Card", 48, 200, "cuda", 4, "V100", "0.736", 0),
    (W, "GPU Instance_P4_12 Core 32GB Memory x1 Card", 12, 32, "cuda", 1, "P4", "0.11", FREE),
    (W, "GPU Instance_P4_48 Core 128GB Memory x4 Card", 48, 128, "cuda", 4, "P4", "0.376", 0),
    (W, "XPU Instance_Kunlun_12 Core 32GB Memory x1 Card", 12, 32, "xpu", 1, "Kunlun", "0.11", 0),
    (T, "CPU Instance_2 Core_4GB Memory", 2, 4, "cpu", 0, "", "0.011", FREE),
    (T, "CPU Instance_8 Core_32GB Memory", 8, 32, "cpu", 0, "", "0.061", FREE),
    (
        T,
        "GPU Instance_Deep learning development card_6 Core 32GB Memory x1 Card",
        6,
        32,
        "cuda",
        1,
        "DL card",
        "0.081",
        0,
    ),
    (T, "GPU Instance_K40_6 Core 32GB Memory x1 Card", 6, 32, "cuda", 1, "K40", "0.104", 0),
    (T, "GPU Instance_K40_24 Core 128GB Memory x4 Card", 24, 128, "cuda", 4, "K40", "0.438", 0),
    (T, "GPU Instance_V100_12 Core 50GB Memory x1 Card", 12, 50, "cuda", 1, "V100", "0.185", 0),
    (T, "GPU Instance_V100_48 Core 200GB Memory x4 Card", 48, 200, "cuda", 4, "V100", "0.736", 0),
    (T, "GPU Instance_P4_12 Core 32GB Memory x1 Card", 12, 32, "cuda", 1, "P4", "0.11", FREE),
    (T, "GPU Instance_P4_48 Core 128GB Memory x4 Card", 48, 128, "cuda", 4, "P4", "0.375", 0),
    (T, "XPU Instance_Kunlun_12 Core 32GB Memory x1 Card", 12, 32, "xpu", 1, "Kunlun", "0.11", 0),
    (P, "CPU Instance_4 Core_8GB Memory", 4, 8, "cpu", 0, "", "0.021", FREE),
    (P, "CPU Instance_8 Core_32GB Memory", 8, 32, "cpu", 0, "", "0.061", FREE),
    (P, "GPU Instance_P4_12 Core 32GB Memory x1 Card", 12, 32, "cuda", 1, "P4", "0.11", FREE),
    (P, "GPU Instance_P4_48 Core 128GB Memory x4 Card", 48, 128, "cuda", 4, "P4", "0.375", 0),
]
