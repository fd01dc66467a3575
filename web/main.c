/* Placeholder until tickq-web lands. */
int main(void)
{
    return 1;
}
