"""`(x, y)` arrays served as a `keras.utils.PyDataset` of batches (a streamed split)."""

import keras


class ArrayBatches(keras.utils.PyDataset):
    """Batches of `batch_size` examples of `(x, y)` arrays, x a dict."""

    def __init__(self, data, batch_size):
        super().__init__()
        self.x, self.y = data
        self.batch_size = batch_size

    def __len__(self):
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return {k: v[part] for k, v in self.x.items()}, self.y[part]
