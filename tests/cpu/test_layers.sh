#!/usr/bin/env bash
# The layering of docs/DESIGN.md §1, checked on the #include lines: a folder includes only itself
# and the folders below it (core <- kernels, comm, data <- model <- train), so kernels/ knows no
# ranks or files, model/ no command line, and nothing below train/ knows the program. The CMake
# libraries (one per folder) are linked in the same direction. Runs from the source root; the
# gemmatron binary (argument 1) is not used.
set -euo pipefail
declare -A allowed=(
    [core]="core"
    [kernels]="core kernels"
    [comm]="core comm"
    [data]="core data"
    [model]="core kernels comm model"
    [train]="core kernels comm data model train"
)
bad=0
for folder in "${!allowed[@]}"; do
    while IFS= read -r -d '' file; do
        dir=$(dirname "$file")
        while IFS= read -r inc; do
            # relative to the file, or (as kernels/cpu does) to the source root
            if [ -e "$dir/$inc" ]; then target=$(realpath -m --relative-to=. "$dir/$inc"); else target=$inc; fi
            top=${target%%/*}
            [ "$top" = "$target" ] && continue # a system header or an unresolved name
            case " ${allowed[$folder]} " in
            *" $top "*) ;;
            *)
                echo "layering: $file includes $target ($folder/ may include only: ${allowed[$folder]})"
                bad=1
                ;;
            esac
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
    done < <(find "$folder" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0)
done
[ "$bad" = 0 ] && echo "layering: every include follows the arrows"
exit "$bad"
