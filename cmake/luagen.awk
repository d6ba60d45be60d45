# Reads one Redis script (a .lua file with a KEYS/ARGV/RETURNS header) and writes, for
# cmake/luagen.sh:
#   out_lua  the script as Redis runs it: the file with its first line (the name line of the
#            header) replaced by one line of locals that name every key, argument and return
#            code, so every other line keeps its number (Redis's @user_script:N points into the
#            .lua file itself);
#   out_h    a C header: the script's text as `<sym>_lua`, and enums of named indices into one
#            argv array of keys then arguments (<P>_KEY_*, <P>_NKEYS, <P>_ARG_*, <P>_ARGC) and of
#            return codes (<P>_RET_*);
#   out_c    the definition of `<sym>_lua`.
# Variables: name (the file name without .lua), src (its path, for messages), out_lua, out_h,
# out_c.
#
# The header, at the top of the file, every line a comment:
#   -- <name>.lua: what the script does (this line is replaced in the script Redis runs)
#   -- ...free text...
#   -- KEYS
#   --   NAME        what the key is (entries: exactly 3 spaces, then an upper-case name)
#   --               continuation lines are indented further
#   --   ...         more keys follow (a variadic tail; last entry only): the script addresses
#   --               them as KEYS[KEYS_TAIL + i], KEYS_TAIL being the number of named keys
#   -- ARGV
#   --   NAME        what the argument is (the same rules, "..." for a variadic tail, then
#   --               addressed as ARGV[ARGV_TAIL + i])
#   -- RETURNS
#   --   NAME = 1    what it means (an integer code; the script may return it alone or as the
#   --               first element of an array)
# The header ends at the first line that is not a comment. Names are unique across sections.
function fail(msg) {
    printf "%s:%d: %s\n", src, NR, msg > "/dev/stderr"
    failed = 1
    exit 1
}
function cstr(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/"/, "\\\"", s)
    gsub(/\t/, "\\t", s)
    return "\"" s "\\n\""
}
BEGIN {
    section = ""
    in_header = 1
    nk = 0; na = 0; nr = 0
    kvar = 0; avar = 0
    prefix = toupper(name)
    gsub(/[^A-Z0-9]/, "_", prefix)
    sym = tolower(prefix)
}
NR > 1 { lines[NR] = $0; nlines = NR }
NR == 1 {
    if ($0 !~ "^-- " name "\\.lua: ")
        fail("the first line must be '-- " name ".lua: <what it does>'")
    next
}
in_header && /^--/ {
    line = $0
    if (line ~ /^-- (KEYS|ARGV|RETURNS):?[ \t]*$/) {
        section = line
        sub(/^-- /, "", section)
        sub(/:?[ \t]*$/, "", section)
        if (seen_section[section]++)
            fail("section " section " appears twice")
        next
    }
    if (section == "" || line !~ /^--   [^ ]/) {
        # Free text, or a continuation line of an entry.
        if (section != "" && line !~ /^--     / && line !~ /^--[ \t]*$/)
            fail("in " section ": an entry is '--   NAME  text', a continuation is indented further")
        next
    }
    entry = substr(line, 6)
    if (entry ~ /^\.\.\.([ \t]|$)/) {
        if (section == "KEYS") kvar = 1
        else if (section == "ARGV") avar = 1
        else fail("RETURNS has no variadic tail")
        tail_seen[section] = 1
        next
    }
    if (tail_seen[section])
        fail("in " section ": '...' must be the last entry")
    if (!match(entry, /^[A-Z][A-Z0-9_]*/))
        fail("in " section ": an entry starts with an upper-case NAME")
    ename = substr(entry, 1, RLENGTH)
    rest = substr(entry, RLENGTH + 1)
    if (used[ename]++)
        fail("the name " ename " is declared twice")
    if (section == "KEYS") {
        keys[++nk] = ename
    } else if (section == "ARGV") {
        args[++na] = ename
    } else {
        if (!match(rest, /^[ \t]*=[ \t]*-?[0-9]+/))
            fail("a return code is 'NAME = <integer>  text'")
        v = substr(rest, 1, RLENGTH)
        sub(/^[ \t]*=[ \t]*/, "", v)
        rets[++nr] = ename
        retv[nr] = v
    }
    next
}
in_header {
    in_header = 0
    if (!seen_section["KEYS"] || !seen_section["ARGV"] || !seen_section["RETURNS"])
        fail("the header must declare KEYS, ARGV and RETURNS (an empty section is allowed)")
}
{ nbody++ }
END {
    if (failed)
        exit 1
    if (in_header)
        fail("the file has no script after its header")
    # Line 1 of the script Redis runs: the names, as locals.
    pro = ""
    if (nk) {
        l = ""; r = ""
        for (i = 1; i <= nk; i++) { l = l (i > 1 ? ", " : "") keys[i]; r = r (i > 1 ? ", " : "") "KEYS[" i "]" }
        pro = pro "local " l " = " r "; "
    }
    if (na) {
        l = ""; r = ""
        for (i = 1; i <= na; i++) { l = l (i > 1 ? ", " : "") args[i]; r = r (i > 1 ? ", " : "") "ARGV[" i "]" }
        pro = pro "local " l " = " r "; "
    }
    if (nr) {
        l = ""; r = ""
        for (i = 1; i <= nr; i++) { l = l (i > 1 ? ", " : "") rets[i]; r = r (i > 1 ? ", " : "") retv[i] }
        pro = pro "local " l " = " r "; "
    }
    # With a variadic tail: where the declared entries end (the tail is KEYS[KEYS_TAIL + i]).
    if (kvar) pro = pro "local KEYS_TAIL = " nk "; "
    if (avar) pro = pro "local ARGV_TAIL = " na "; "
    pro = pro "-- generated from the header of " name ".lua"

    # The header lines stay as comments: the script keeps the file's line numbers.
    printf "%s\n", pro > out_lua
    for (i = 2; i <= nlines; i++) printf "%s\n", lines[i] >> out_lua
    close(out_lua)

    guard = "ENGAGE_LUA_" prefix "_H"
    printf "/* Generated by cmake/luagen.sh from %s: do not edit. */\n", src > out_h
    printf "#ifndef %s\n#define %s\n\n", guard, guard >> out_h
    printf "/** The script as Redis runs it (see the header of %s.lua). */\n", name >> out_h
    printf "extern const char %s_lua[];\n\n", sym >> out_h
    printf "/** Indices into one argv array: the keys, then the arguments%s. */\n", \
        (kvar || avar) ? " (then a variadic tail)" : "" >> out_h
    printf "enum {\n" >> out_h
    for (i = 1; i <= nk; i++) printf "    %s_KEY_%s = %d,\n", prefix, keys[i], i - 1 >> out_h
    printf "    %s_NKEYS = %d,\n", prefix, nk >> out_h
    for (i = 1; i <= na; i++) printf "    %s_ARG_%s = %d,\n", prefix, args[i], nk + i - 1 >> out_h
    printf "    %s_ARGC = %d\n};\n", prefix, nk + na >> out_h
    if (kvar) printf "/** More keys may follow the declared ones. */\n#define %s_KEYS_VARIADIC 1\n", prefix >> out_h
    if (avar) printf "/** More arguments may follow the declared ones. */\n#define %s_ARGV_VARIADIC 1\n", prefix >> out_h
    if (nr) {
        printf "\n/** Return codes (alone, or first in an array). */\nenum {\n" >> out_h
        for (i = 1; i <= nr; i++) printf "    %s_RET_%s = %s%s\n", prefix, rets[i], retv[i], i < nr ? "," : "" >> out_h
        printf "};\n" >> out_h
    }
    printf "\n#endif\n" >> out_h
    close(out_h)

    printf "/* Generated by cmake/luagen.sh from %s: do not edit. */\n", src > out_c
    printf "#include \"%s_lua.h\"\n\n", name >> out_c
    # One string literal of the whole script: longer than the 4095 characters ISO C requires
    # compilers to support, which gcc and clang handle.
    printf "#pragma GCC diagnostic ignored \"-Woverlength-strings\"\n\n" >> out_c
    printf "const char %s_lua[] =\n", sym >> out_c
    printf "    %s\n", cstr(pro) >> out_c
    for (i = 2; i <= nlines; i++) printf "    %s%s\n", cstr(lines[i]), i == nlines ? ";" : "" >> out_c
    close(out_c)
}
