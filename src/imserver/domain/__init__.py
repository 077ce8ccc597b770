"""Plain types shared by every layer. No I/O, and no imports of any other imserver package."""
