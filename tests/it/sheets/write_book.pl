# Writes the legacy Excel (BIFF8) workbooks of tests/it/spreadsheets.rs with Spreadsheet::WriteExcel
# (Debian package libspreadsheet-writeexcel-perl).
#
#   write_book.pl places OUT     the workbook write_book.py writes, as .xls (no error cell: this writer
#                                keeps no formula error)
#   write_book.pl long-text OUT  one row whose text is 20,000 characters: its string spans the CONTINUE
#                                records of the shared-string table, which GDAL's XLS driver (FreeXL)
#                                refuses to open
use strict;
use warnings;
use Spreadsheet::WriteExcel;

my ($what, $out) = @ARGV;
my $book = Spreadsheet::WriteExcel->new($out) or die "cannot write $out: $!";
if ($what eq 'places') {
    $book->add_worksheet('Cover');
    my $sheet = $book->add_worksheet('Places');
    my $day = $book->add_format(num_format => 'yyyy-mm-dd');
    my $seen = $book->add_format(num_format => 'yyyy-mm-dd hh:mm:ss');
    my @header = qw(name visits score day seen lat lon ratio);
    $sheet->write_string(2, 1 + $_, $header[$_]) for 0 .. $#header;
    my @rows = (
        ['Sol', 10, 1.5, '2024-05-17T', '2024-05-17T13:45:30', 40.41, -3.70, 0.5],
        ['Opera', 20, 2.25, '2024-06-01T', '2024-06-01T08:00:00', 40.42, -3.71, undef],
        ['Retiro', 30, 3.0, '2023-12-31T', '2023-12-31T23:59:59', 40.415, -3.684, 2],
    );
    for my $r (0 .. $#rows) {
        my ($row, @v) = (3 + $r, @{ $rows[$r] });
        $sheet->write_string($row, 1, $v[0]);
        $sheet->write_number($row, 1 + $_, $v[$_]) for 1, 2, 5, 6;
        $sheet->write_date_time($row, 4, $v[3], $day);
        $sheet->write_date_time($row, 5, $v[4], $seen);
        $sheet->write_number($row, 8, $v[7]) if defined $v[7];
    }
} elsif ($what eq 'long-text') {
    my $sheet = $book->add_worksheet();
    $sheet->write_string(0, 0, 'name');
    $sheet->write_string(0, 1, 'note');
    $sheet->write_string(1, 0, 'Sol');
    $sheet->write_string(1, 1, 'y' x 20000);
} else {
    die "unknown workbook $what";
}
$book->close() or die "cannot close $out: $!";
