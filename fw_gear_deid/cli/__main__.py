import sys

from fw_gear_deid.cli import main

sys.exit(main())
