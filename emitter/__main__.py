from emitter.cli import main

raise SystemExit(main())
