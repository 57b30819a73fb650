from avtool.cli.main import main

main()
