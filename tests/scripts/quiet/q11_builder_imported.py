"""The model comes from a module lossaudit was not given."""

from models import build

model = build(num_classes=1)
model.compile(optimizer="adam", loss="categorical_crossentropy")
